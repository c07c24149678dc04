/**
 * An in-process sluice for integration tests, with its log lines captured in memory so tests can
 * assert on access lines.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { resolveConfigObject } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { Loggers } from '../../src/observability/logger.js';
import { type InstanceOptions, SluiceInstance } from '../../src/runtime/instance.js';

/** A started test instance. */
export interface TestSluice {
  readonly instance: SluiceInstance;
  /** Port of the first listener. */
  readonly port: number;
  readonly url: string;
  /** Every log line written so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Access lines only. */
  accessLines(): Record<string, unknown>[];
  /** Waits until `n` access lines were written (the log is written after the answer). */
  waitForAccessLines(n: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** Captures pino output as parsed objects. */
export function memoryLoggers(): { loggers: Loggers; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line));
      cb();
    },
  });
  const app = pino(
    {
      level: 'debug',
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  const accessSink = {
    write(line: string) {
      logs.push(JSON.parse(line));
    },
  };
  const loggers: Loggers = {
    app,
    access: null,
    accessSink,
    reopen: () => [],
    droppedLines: () => 0,
    flush() {},
    close: async () => {},
    follow(log) {
      app.level = log.level;
    },
  };
  return { loggers, logs };
}

/** Resolves a config object, failing the test with every problem if it is invalid. */
export function resolve(config: SluiceConfigInput) {
  const result = resolveConfigObject(config, null);
  if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
  return result.config;
}

/**
 * Starts sluice in this process with `config` (use port 0 in listen addresses); `options` may set
 * what the instance would otherwise take from its surroundings (a DNS resolver).
 */
export async function startSluice(
  config: SluiceConfigInput,
  options: Pick<InstanceOptions, 'resolve'> = {},
): Promise<TestSluice> {
  const { loggers, logs } = memoryLoggers();
  const instance = new SluiceInstance(resolve(config), { loggers, ...options });
  await instance.start();
  const port = instance.addresses().servers[0]!.port;
  const accessLines = () => logs.filter((l) => l.msg === 'request');
  return {
    instance,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    accessLines,
    async waitForAccessLines(n, timeoutMs = 3000) {
      const until = Date.now() + timeoutMs;
      while (accessLines().length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      return accessLines();
    },
    close: () => instance.close(1000),
  };
}
