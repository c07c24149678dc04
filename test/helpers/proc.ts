/**
 * What a process holds, read from /proc (Linux): resident memory and open file descriptors. The
 * reliability tests read a worker's figures before and after a fault to show nothing leaked.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One reading of a process. */
export interface ProcSample {
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** Resident set size, kB (VmRSS). */
  readonly rssKb: number;
  /** Open file descriptors (entries of /proc/PID/fd). */
  readonly fds: number;
}

/** Reads RSS and the open descriptors of `pid`; throws when the process is gone. */
export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return {
    at: Date.now(),
    rssKb: rss ? Number(rss[1]) : Number.NaN,
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** Samples `pid` every `everyMs` until `stop()`, which returns every sample taken. */
export function sampleProcess(pid: number, everyMs = 1000): { stop(): ProcSample[]; samples: ProcSample[] } {
  const samples: ProcSample[] = [procSample(pid)];
  const timer = setInterval(() => {
    try {
      samples.push(procSample(pid));
    } catch {
      // the process is gone: the samples so far stand
    }
  }, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
