/**
 * The figures of a reliability test (faults under load, hostile input), written as one JSON file
 * per test into the directory named by SLUICE_RELIABILITY_OUT when it is set (`npm run
 * reliability` sets it, then renders RELIABILITY.md from the files); a no-op otherwise, so the
 * normal test run writes nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Memory and descriptors of a process before and after a fault. */
export interface ResourceFigures {
  readonly rss_mb_before: number;
  readonly rss_mb_after: number;
  readonly fds_before: number;
  readonly fds_after: number;
}

/** One row of RELIABILITY.md. */
export interface ReliabilityRecord {
  /** File name and sort key: `faults-01-upstream-restart`. */
  readonly id: string;
  /** Faults under load, hostile input, or property tests (fast-check). */
  readonly group: 'faults' | 'hostile' | 'fuzz';
  /** What was tried. */
  readonly title: string;
  /** Requests (or connections) sent, every one counted. */
  readonly requests: number;
  /** How many of them failed (a connection error, a timeout or an unexpected status). */
  readonly failed: number;
  /** What the test allows to fail, in words: `none`, `at most the 20 connections of the killed worker`. */
  readonly allowed: string;
  /** What happened, in a sentence. */
  readonly outcome: string;
  /** The worker's memory and descriptors, where the test reads them. */
  readonly resources?: ResourceFigures;
  readonly duration_s?: number;
}

/** Writes `record` when SLUICE_RELIABILITY_OUT is set. */
export function recordReliability(record: ReliabilityRecord): void {
  const dir = process.env.SLUICE_RELIABILITY_OUT;
  if (dir === undefined || dir === '') return;
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${record.id}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Counts the cases of the property tests of one file and records them after its tests: wrap each
 * property's predicate in `check`, call `record()` in `afterAll`. A case that throws (a broken
 * property; fast-check's shrinking re-runs such cases) is counted as failed and rethrown.
 */
export function fuzzCounter(
  id: string,
  title: string,
): { check<A extends unknown[]>(predicate: (...args: A) => void): (...args: A) => void; record(): void } {
  let cases = 0;
  let failed = 0;
  return {
    check:
      (predicate) =>
      (...args) => {
        cases++;
        try {
          predicate(...args);
        } catch (err) {
          failed++;
          throw err;
        }
      },
    record: () =>
      recordReliability({
        id,
        group: 'fuzz',
        title,
        requests: cases,
        failed,
        allowed: 'none: no exception, every result well-formed',
        outcome: failed === 0 ? 'every case held' : `${failed} cases broke a property (shrinking included)`,
      }),
  };
}

/** kB to MB with one decimal. */
export function mb(kb: number): number {
  return Math.round(kb / 102.4) / 10;
}
