/**
 * 1 GiB through a spawned sluice, each way, with its memory measured: bodies must stream with
 * back-pressure, never be buffered. The upstream and the client run in this process; sluice runs
 * alone in its own, one fresh process per transfer so each peak (VmHWM) belongs to one transfer.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const GiB = 1024 ** 3;
const CHUNK = 64 * 1024;
const CHUNKS = GiB / CHUNK;
/** The limit the brief sets for sluice's resident memory while moving 1 GiB. */
const RSS_LIMIT_MB = 200;
/**
 * The receiving side stops reading for PAUSE_MS once PAUSE_AT bytes arrived: a proxy that ignored
 * back-pressure would buffer the sender's output meanwhile (hundreds of MB) and fail the RSS bound.
 */
const PAUSE_AT = 256 * 1024 * 1024;
const PAUSE_MS = 1500;

/** Counts and hashes a body, pausing it once at PAUSE_AT; resolves with the count and sha1. */
function consume(body: Readable): Promise<{ bytes: number; digest: string; paused: boolean }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    let bytes = 0;
    let paused = false;
    body.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
      if (!paused && bytes >= PAUSE_AT) {
        paused = true;
        body.pause();
        setTimeout(() => body.resume(), PAUSE_MS);
      }
    });
    body.on('end', () => resolve({ bytes, digest: hash.digest('hex'), paused }));
    body.on('error', reject);
  });
}

/** Chunk `i` of the test stream: 64 KiB, stamped with its index so reordering or loss shows. */
function makeChunk(base: Buffer, i: number): Buffer {
  const chunk = Buffer.from(base);
  chunk.writeUInt32BE(i, 0);
  chunk.writeUInt32BE(i, CHUNK - 4);
  return chunk;
}

/** The 1 GiB stream as a generator of chunks; its sha256 is `expectedDigest`. */
function* stream(base: Buffer): Generator<Buffer> {
  for (let i = 0; i < CHUNKS; i++) yield makeChunk(base, i);
}

/** Samples VmRSS of `pid` every 100 ms; `stop()` also reads VmHWM (the peak the kernel saw). */
function sampleMemory(pid: number) {
  const read = () => {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  };
  const start = read();
  let peakSampledKb = start.rssKb;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      peakSampledKb = Math.max(peakSampledKb, read().rssKb);
      samples++;
    } catch {
      // the process is gone; stop() reports what was seen
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      const end = read();
      peakSampledKb = Math.max(peakSampledKb, end.rssKb);
      return {
        startMb: start.rssKb / 1024,
        peakSampledMb: peakSampledKb / 1024,
        hwmMb: end.hwmKb / 1024,
        samples,
      };
    },
  };
}

describe('1 GiB streamed through a spawned sluice', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let up: TestUpstream;
  const base = Buffer.alloc(CHUNK);
  let expectedDigest: string;
  /** What the upload route's upstream received. */
  const received = { bytes: 0, digest: '', paused: false };

  beforeAll(async () => {
    requireBuilt();
    for (let i = 0; i < CHUNK; i++) base[i] = (i * 31 + 7) & 0xff;
    const h = createHash('sha1');
    for (const c of stream(base)) h.update(c);
    expectedDigest = h.digest('hex');
    tmp = await tempDir();
    up = await startUpstream(
      (req, res) => {
        if (req.url === '/upload') {
          // Consume the body (with one pause), counting and hashing it, then answer with the count.
          consume(req).then(({ bytes, digest, paused }) => {
            Object.assign(received, { bytes, digest, paused });
            const doc = JSON.stringify({ bytes, digest });
            res.writeHead(200, {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(doc),
            });
            res.end(doc);
          }, res.destroy.bind(res));
          return;
        }
        if (req.url === '/download') {
          req.resume();
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': GiB });
          // Write 64 KiB chunks, waiting for 'drain' whenever the socket buffer is full.
          const chunks = stream(base);
          const pump = () => {
            for (;;) {
              const next = chunks.next();
              if (next.done) {
                res.end();
                return;
              }
              if (!res.write(next.value)) {
                res.once('drain', pump);
                return;
              }
            }
          };
          res.on('close', () => res.off('drain', pump));
          pump();
          return;
        }
        res.writeHead(404).end();
      },
      { streaming: true },
    );
  });

  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await up?.close();
    await tmp?.remove();
  });

  /** Starts a fresh sluice proxying everything to the upstream. */
  async function startProxy(name: string): Promise<{ proc: CliProcess; port: number }> {
    const port = await freePort();
    const file = join(tmp.path, `${name}.yaml`);
    await writeFile(
      file,
      `version: 1
workers: 1
log: { level: info, access: stdout, format: json }
servers:
  - name: stream
    listen: "127.0.0.1:${port}"
    limits: { max_body: 2gb, request_timeout: 0s }
    routes:
      - name: all
        proxy: { upstream: up, timeouts: { read: 60s, send: 60s } }
upstreams:
  up:
    targets: [{ url: ${up.url} }]
`,
    );
    const proc = spawnCli(['start', '-c', file], { cwd: tmp.path });
    await waitForPort(port, { proc });
    await proc.waitForJson((l) => l.msg === 'sluice started');
    return { proc, port };
  }

  async function stopProxy(proc: CliProcess): Promise<void> {
    proc.signal('SIGTERM');
    expect((await proc.waitForExit(15_000)).code).toBe(0);
  }

  it('uploads 1 GiB: the upstream receives every byte in order (pausing once); sluice stays under 200 MB RSS', async () => {
    const { proc, port } = await startProxy('upload');
    const memory = sampleMemory(proc.pid);
    const started = performance.now();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/upload',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': GiB },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      // Readable.from pulls the generator only as fast as the socket drains.
      pipeline(Readable.from(stream(base), { objectMode: false }), req).catch(reject);
    });
    const seconds = (performance.now() - started) / 1000;
    const mem = memory.stop();
    console.log(
      `upload 1 GiB: ${seconds.toFixed(1)} s (${(1024 / seconds).toFixed(0)} MiB/s); sluice RSS at start ${mem.startMb.toFixed(1)} MB, peak sampled ${mem.peakSampledMb.toFixed(1)} MB (${mem.samples} samples), VmHWM ${mem.hwmMb.toFixed(1)} MB`,
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ bytes: GiB, digest: expectedDigest });
    expect(received).toEqual({ bytes: GiB, digest: expectedDigest, paused: true });
    expect(mem.samples).toBeGreaterThan(0);
    expect(mem.peakSampledMb).toBeLessThan(RSS_LIMIT_MB);
    expect(mem.hwmMb).toBeLessThan(RSS_LIMIT_MB);
    const [line] = await proc.waitForJson((l) => l.msg === 'request' && l.path === '/upload');
    expect(line).toMatchObject({ method: 'POST', status: 200, route: 'all', upstream: 'up', attempts: 1 });
    await stopProxy(proc);
  }, 120_000);

  it('downloads 1 GiB: the client receives every byte in order (pausing once); sluice stays under 200 MB RSS', async () => {
    const { proc, port } = await startProxy('download');
    const memory = sampleMemory(proc.pid);
    const started = performance.now();
    const result = await new Promise<{
      status: number;
      length: string | undefined;
      bytes: number;
      digest: string;
      paused: boolean;
    }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/download', agent: false }, (res) => {
        consume(res).then(
          ({ bytes, digest, paused }) =>
            resolve({
              status: res.statusCode ?? 0,
              length: res.headers['content-length'],
              bytes,
              digest,
              paused,
            }),
          reject,
        );
      });
      req.on('error', reject);
    });
    const seconds = (performance.now() - started) / 1000;
    const mem = memory.stop();
    console.log(
      `download 1 GiB: ${seconds.toFixed(1)} s (${(1024 / seconds).toFixed(0)} MiB/s); sluice RSS at start ${mem.startMb.toFixed(1)} MB, peak sampled ${mem.peakSampledMb.toFixed(1)} MB (${mem.samples} samples), VmHWM ${mem.hwmMb.toFixed(1)} MB`,
    );
    expect(result).toEqual({
      status: 200,
      length: String(GiB),
      bytes: GiB,
      digest: expectedDigest,
      paused: true,
    });
    expect(mem.samples).toBeGreaterThan(0);
    expect(mem.peakSampledMb).toBeLessThan(RSS_LIMIT_MB);
    expect(mem.hwmMb).toBeLessThan(RSS_LIMIT_MB);
    const [line] = await proc.waitForJson((l) => l.msg === 'request' && l.path === '/download');
    expect(line).toMatchObject({ method: 'GET', status: 200, bytes_out: GiB, route: 'all', upstream: 'up' });
    await stopProxy(proc);
  }, 120_000);
});
