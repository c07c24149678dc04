/**
 * Rate limits without Redis over 2 workers (built CLI): each worker keeps its own buckets, so a
 * client whose connections are spread over both (round-robin accept, a new connection per request,
 * as curl in a loop) must get no more than `burst + 1` at once in all, and RateLimit-Limit names
 * the bucket that refused it.
 */
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  startConfigured,
  tempDir,
} from '../helpers/cli.js';

/** One request on a connection of its own: its status and RateLimit-Limit. */
function fresh(port: number, path: string): Promise<{ status: number; limit: string | undefined }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, limit: res.headers['ratelimit-limit'] as string }),
      );
    }).on('error', reject);
  });
}

describe('rate limits over 2 workers (no Redis)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let sluice: CliProcess;
  let port: number;

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
    port = await freePort();
    sluice = await startConfigured(
      tmp.path,
      `workers: 2
log: { access: off }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - match: { path_prefix: /burst/ }
        rate_limit: { rate: 1/m, burst: 2 }
        respond: { status: 200, body: "ok" }
      - match: { path_prefix: /strict/ }
        rate_limit: { rate: 1/m, burst: 0 }
        respond: { status: 200, body: "ok" }
`,
      port,
    );
  }, 30_000);

  afterAll(async () => {
    await sluice?.kill();
    await killAll();
    await tmp?.remove();
  });

  it('burst 2: one token per worker, 2 through at once in all (never more than burst + 1), RateLimit-Limit 1', async () => {
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await fresh(port, `/burst/${i}`));
    const passed = answers.filter((a) => a.status === 200).length;
    // 3 tokens split over 2 workers, rounded down. Half the burst (rounded down) plus a token of
    // each worker's own would be 2 each: 4 in all.
    expect(passed).toBeGreaterThanOrEqual(1);
    expect(passed).toBeLessThanOrEqual(2);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused.map((a) => a.status)).toEqual(Array(10 - passed).fill(429));
    expect(refused.map((a) => a.limit)).toEqual(Array(10 - passed).fill('1'));
  });

  it('burst 0: each worker still lets its first request through, so at most 2 (the workers) at once', async () => {
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await fresh(port, `/strict/${i}`));
    const passed = answers.filter((a) => a.status === 200).length;
    expect(passed).toBeGreaterThanOrEqual(1);
    expect(passed).toBeLessThanOrEqual(2);
    expect(answers.filter((a) => a.status === 429).map((a) => a.limit)).toEqual(Array(10 - passed).fill('1'));
  });
});
