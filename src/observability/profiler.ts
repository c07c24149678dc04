/**
 * CPU and heap profiles of this process in pprof format (gzipped protobuf, as `go tool pprof` and
 * Grafana Pyroscope read them), from V8's own profilers through `node:inspector`:
 *
 * - CPU: the sampling profiler runs for the requested seconds (1 ms interval) on V8's profiler
 *   thread; the event loop keeps serving, paying only the sampling interrupts.
 * - Heap: allocation sampling runs from start-up (one sample per 512 KiB allocated, the cost Go
 *   pays with its default MemProfileRate), so a heap profile is a cheap read of live samples —
 *   never a full heap snapshot, which would stop the worker for seconds.
 */
import { Session } from 'node:inspector/promises';
import { gzipSync } from 'node:zlib';
import {
  Line,
  Location,
  Function as PprofFunction,
  Profile,
  Sample,
  StringTable,
  ValueType,
} from 'pprof-format';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface CpuNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

interface HeapNode {
  id: number;
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

const HEAP_SAMPLING_BYTES = 512 * 1024;

/** One process's profilers. */
export class Profiler {
  readonly #session = new Session();
  #connected = false;
  #cpuBusy = false;

  async #connect(): Promise<void> {
    if (this.#connected) return;
    this.#session.connect();
    this.#connected = true;
  }

  /** Starts heap allocation sampling (call once at start-up). */
  async startHeapSampling(): Promise<void> {
    await this.#connect();
    await this.#session.post('HeapProfiler.startSampling', { samplingInterval: HEAP_SAMPLING_BYTES });
  }

  /** Ends the CPU profile being taken now, if any (its caller left, or the process stops). */
  endCpu(): void {
    if (this.#endCpu !== null) this.#endCpu();
    // Still starting (the inspector's enable and start are awaited): it ends as soon as it runs.
    else if (this.#cpuBusy) this.#endEarly = true;
  }

  #endCpu: (() => void) | null = null;
  #endEarly = false;
  /** The CPU profile being taken, settled either way: `close` waits for it. */
  #cpuRun: Promise<unknown> = Promise.resolve();

  /** Samples the CPU for `seconds` (or until endCpu); the pprof bytes. One profile at a time. */
  cpu(seconds: number): Promise<Buffer> {
    if (this.#cpuBusy) return Promise.reject(new ProfilerBusyError());
    this.#cpuBusy = true;
    this.#endEarly = false;
    const run = this.#cpu(seconds);
    this.#cpuRun = run.catch(() => undefined);
    return run;
  }

  async #cpu(seconds: number): Promise<Buffer> {
    try {
      await this.#connect();
      await this.#session.post('Profiler.enable');
      await this.#session.post('Profiler.setSamplingInterval', { interval: 1000 });
      const startedAt = Date.now();
      await this.#session.post('Profiler.start');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(end, seconds * 1000);
        function end(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#endCpu = end;
        if (this.#endEarly) end();
      });
      this.#endCpu = null;
      const { profile } = (await this.#session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
      await this.#session.post('Profiler.disable');
      return gzipSync(cpuToPprof(profile, startedAt));
    } finally {
      this.#cpuBusy = false;
    }
  }

  /** The live sampled allocations; the pprof bytes. */
  async heap(): Promise<Buffer> {
    await this.#connect();
    const { profile } = (await this.#session.post('HeapProfiler.getSamplingProfile')) as unknown as {
      profile: { head: HeapNode };
    };
    return gzipSync(heapToPprof(profile.head));
  }

  /**
   * Ends a CPU profile being taken, so that its caller gets the samples so far, then detaches from
   * the inspector. Detached at once, a worker retiring after a rolling reload left the profile
   * unanswered, and the caller got a 500 when the worker exited.
   */
  async close(): Promise<void> {
    this.endCpu();
    await this.#cpuRun;
    if (this.#connected) this.#session.disconnect();
    this.#connected = false;
  }
}

/** A CPU profile is already being taken in this process. */
export class ProfilerBusyError extends Error {
  constructor() {
    super('a CPU profile is already being taken in this process');
  }
}

/** Builds the shared tables of a pprof profile from V8 call frames. */
class PprofBuilder {
  readonly strings = new StringTable();
  readonly functions: PprofFunction[] = [];
  readonly locations: Location[] = [];
  readonly #functionIds = new Map<string, number>();

  /** A location for one V8 node (one call site). */
  location(frame: CallFrame): number {
    const key = `${frame.functionName}\n${frame.url}\n${frame.lineNumber}`;
    let functionId = this.#functionIds.get(key);
    if (functionId === undefined) {
      functionId = this.functions.length + 1;
      this.#functionIds.set(key, functionId);
      const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
      this.functions.push(
        new PprofFunction({
          id: functionId,
          name: this.strings.dedup(name),
          systemName: this.strings.dedup(name),
          filename: this.strings.dedup(frame.url),
          startLine: frame.lineNumber + 1,
        }),
      );
    }
    const id = this.locations.length + 1;
    this.locations.push(new Location({ id, line: [new Line({ functionId, line: frame.lineNumber + 1 })] }));
    return id;
  }
}

/** V8 CPU profile → pprof (samples/count and cpu/nanoseconds per stack). */
/**
 * `startedAtMs` is the wall-clock time the profile started: V8's `startTime` counts microseconds
 * on a monotonic clock (pprof read it as a time in January 1970).
 */
export function cpuToPprof(profile: CpuProfile, startedAtMs: number): Uint8Array {
  const b = new PprofBuilder();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const location = new Map<number, number>();
  const stack = (id: number): number[] => {
    const out: number[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (node === undefined || node.callFrame.functionName === '(root)') break;
      let loc = location.get(cur);
      if (loc === undefined) {
        loc = b.location(node.callFrame);
        location.set(cur, loc);
      }
      out.push(loc);
    }
    return out;
  };
  const counts = new Map<number, { n: number; ns: number }>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // V8's `(idle)` samples are the thread waiting for events, not running: counted as CPU time they
  // made an idle worker look 97 % busy (pprof's cpu profiles count time on the CPU only).
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    if (idle.has(id)) continue;
    const entry = counts.get(id) ?? { n: 0, ns: 0 };
    entry.n++;
    entry.ns += (deltas[i + 1] ?? deltas[i] ?? 0) * 1000;
    counts.set(id, entry);
  }
  const sample = [...counts].map(([id, v]) => new Sample({ locationId: stack(id), value: [v.n, v.ns] }));
  return new Profile({
    sampleType: [
      new ValueType({ type: b.strings.dedup('samples'), unit: b.strings.dedup('count') }),
      new ValueType({ type: b.strings.dedup('cpu'), unit: b.strings.dedup('nanoseconds') }),
    ],
    sample,
    location: b.locations,
    function: b.functions,
    stringTable: b.strings,
    timeNanos: BigInt(Math.round(startedAtMs)) * 1_000_000n,
    durationNanos: (profile.endTime - profile.startTime) * 1000,
    periodType: new ValueType({ type: b.strings.dedup('cpu'), unit: b.strings.dedup('nanoseconds') }),
    period: 1_000_000,
  }).encode();
}

/** V8 sampling heap profile → pprof (inuse_space/bytes per allocation stack). */
export function heapToPprof(head: HeapNode): Uint8Array {
  const b = new PprofBuilder();
  const sample: Sample[] = [];
  const walk = (node: HeapNode, stack: number[]) => {
    const here = node.callFrame.functionName === '(root)' ? stack : [b.location(node.callFrame), ...stack];
    if (node.selfSize > 0) sample.push(new Sample({ locationId: here, value: [node.selfSize] }));
    for (const child of node.children) walk(child, here);
  };
  walk(head, []);
  return new Profile({
    sampleType: [new ValueType({ type: b.strings.dedup('inuse_space'), unit: b.strings.dedup('bytes') })],
    sample,
    location: b.locations,
    function: b.functions,
    stringTable: b.strings,
    timeNanos: BigInt(Date.now()) * 1_000_000n,
    periodType: new ValueType({ type: b.strings.dedup('space'), unit: b.strings.dedup('bytes') }),
    period: HEAP_SAMPLING_BYTES,
  }).encode();
}
