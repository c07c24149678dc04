import { execFileSync, spawn } from 'node:child_process';
import fs, {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { LineWriter } from '../../src/observability/line-writer.js';
import { requireBuilt } from '../helpers/cli.js';

/** Runs a shell command line in `cwd`; its stdout and stderr once it has exited. */
async function shell(command: string, cwd: string): Promise<{ out: string; err: string }> {
  const child = spawn('sh', ['-c', command], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  await new Promise((r) => child.on('close', r));
  return { out, err };
}

const line = (i: number) => `{"n":${i},"pad":"${'x'.repeat(i % 300)}"}\n`;

describe('LineWriter', () => {
  it('keeps every line whole and in order, however fast lines come', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'a.log');
    const errors: Error[] = [];
    const w = new LineWriter(file, (e) => errors.push(e));
    // 50,000 lines in bursts of 500 per event-loop turn, as a loaded worker writes them.
    for (let burst = 0; burst < 100; burst++) {
      for (let i = 0; i < 500; i++) w.write(line(burst * 500 + i));
      await new Promise((r) => setImmediate(r));
    }
    await w.drain();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(50_000);
    expect(lines.map((l) => JSON.parse(l).n)).toEqual(lines.map((_, i) => i));
    expect(errors).toEqual([]);
    expect(w.dropped).toBe(0);
  });

  it('writes a line longer than a batch alone and whole', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'b.log');
    const w = new LineWriter(file, () => undefined);
    const long = `${'y'.repeat(2 * 1024 * 1024)}\n`;
    w.write('first\n');
    w.write(long);
    w.write('last\n');
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(`first\n${long}last\n`);
  });

  it('on a pipe shared by two processes and read late, every line arrives whole and in order', async () => {
    // Two writers share one real pipe whose reader starts 0.5 s late, so the pipe (64 KiB) fills.
    // Each writer first touches process.stdout, as sluice's primary does with its banner: Node
    // then puts the pipe in non-blocking mode, and a full pipe answers EAGAIN or a partial write.
    const writer = (id: string) => `
      import { LineWriter } from ${JSON.stringify(join(process.cwd(), 'src/observability/line-writer.ts'))};
      process.stdout.write('');
      const w = new LineWriter(1, (e) => { process.stderr.write(String(e)); });
      let n = 0;
      const tick = () => {
        for (let i = 0; i < 400; i++) w.write(JSON.stringify({ w: '${id}', n: n++, pad: 'z'.repeat(n % 200) }) + '\\n');
        if (n < 20000) setImmediate(tick); else w.drain().then(() => process.stderr.write(String(w.dropped === 0 ? '' : 'dropped ' + w.dropped)));
      };
      tick();
    `;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lw-'));
    writeFileSync(join(dir, 'a.mjs'), writer('a'));
    writeFileSync(join(dir, 'b.mjs'), writer('b'));
    const tsx = pathToFileURL(join(process.cwd(), 'node_modules/tsx/dist/loader.mjs')).href;
    const node = `${JSON.stringify(process.execPath)} --import ${tsx}`;
    const { out, err } = await shell(`(${node} a.mjs & ${node} b.mjs & wait) | (sleep 0.5; cat)`, dir);
    expect(err).toBe('');
    const lines = out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(40_000);
    const seen = { a: [] as number[], b: [] as number[] };
    for (const l of lines) {
      const { w, n } = JSON.parse(l) as { w: 'a' | 'b'; n: number };
      seen[w].push(n);
    }
    const expected = Array.from({ length: 20_000 }, (_, i) => i);
    expect(seen.a).toEqual(expected);
    expect(seen.b).toEqual(expected);
  }, 30_000);

  it('writes to stdout on a pipe through a private non-blocking descriptor, leaving the shared one as it was', async () => {
    // O_NONBLOCK belongs to the open file, shared with every process on the pipe: not ours to change.
    // Plain node on the build: tsx itself makes stdout non-blocking.
    requireBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lw-'));
    writeFileSync(
      join(dir, 'w.mjs'),
      `
      import { readFileSync } from 'node:fs';
      import { LineWriter } from ${JSON.stringify(join(process.cwd(), 'dist/observability/line-writer.js'))};
      const flags = () => readFileSync('/proc/self/fdinfo/1', 'utf8').match(/flags:\\s+(\\d+)/)[1];
      const before = flags();
      const w = new LineWriter(1, (e) => process.stderr.write(String(e)));
      for (let i = 0; i < 1000; i++) w.write('line ' + i + '\\n');
      await w.drain();
      process.stderr.write(before + ' ' + flags());
    `,
    );
    const { out, err } = await shell(`${JSON.stringify(process.execPath)} w.mjs | cat`, dir);
    const [before, after] = err.split(' ');
    expect(Number.parseInt(before!, 8) & constants.O_NONBLOCK).toBe(0);
    expect(after).toBe(before);
    expect(out.split('\n')).toHaveLength(1001);
  }, 30_000);

  it('refuses a FIFO without a reader at once rather than hanging the start', () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => new LineWriter(fifo, () => undefined)).toThrow(/ENXIO/);
  });

  it('counts the lines a failing destination lost and reports the failure once', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'ro.log');
    writeFileSync(file, '');
    const errors: Error[] = [];
    const w = new LineWriter(openSync(file, 'r'), (e) => errors.push(e));
    for (let i = 0; i < 10; i++) w.write(line(i));
    await w.drain();
    for (let i = 0; i < 5; i++) w.write(line(i));
    w.flushSync();
    expect(w.dropped).toBe(15);
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EBADF']);
  });

  it('keeps at most 16 MiB for a reader that stopped, drops and counts the rest, reports it once, and catches up', async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const errors: Error[] = [];
    const w = new LineWriter(fifo, (e) => errors.push(e));
    const total = 80_000; // 24 MB of lines, the reader reading nothing meanwhile
    const text = `{"pad":"${'p'.repeat(290)}"}\n`;
    for (let i = 0; i < total; i++) w.write(text);
    expect(w.dropped).toBeGreaterThan(0);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/16 MiB behind; new lines are dropped/),
    ]);
    // The reader comes back: everything kept arrives, whole.
    let received = 0;
    let rest = '';
    const buf = Buffer.alloc(1 << 16);
    let drained = false;
    void w.drain().then(() => {
      drained = true;
    });
    for (let idle = 0; !drained || idle < 3; ) {
      let n = 0;
      try {
        n = readSync(reader, buf);
      } catch {
        n = 0; // EAGAIN: nothing yet
      }
      if (n === 0) {
        idle++;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      idle = 0;
      const chunk = rest + buf.toString('latin1', 0, n);
      const lines = chunk.split('\n');
      rest = lines.pop()!;
      for (const l of lines) expect(l).toBe(text.slice(0, -1));
      received += lines.length;
    }
    closeSync(reader);
    expect(rest).toBe('');
    expect(received + w.dropped).toBe(total);
    expect(received * text.length).toBeGreaterThan(15 * 1024 * 1024);
  });

  it('after a short write to a file, writes the rest first and never reuses a buffer still to be written', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'short.log');
    const calls: { bufs: Buffer[]; cb: (e: Error | null, n: number) => void }[] = [];
    const spy = vi.spyOn(fs, 'writev').mockImplementation(((
      _fd: number,
      bufs: Buffer[],
      _pos: null,
      cb: (e: Error | null, n: number) => void,
    ) => {
      calls.push({ bufs, cb });
    }) as never);
    try {
      const w = new LineWriter(file, () => undefined);
      const text = (c: string) => `${c.repeat(1000)}\n`;
      for (let i = 0; i < 262; i++) w.write(text('a'));
      for (let i = 0; i < 262; i++) w.write(text('b'));
      w.write(text('c'));
      expect(calls).toHaveLength(1);
      calls[0]!.cb(null, 1000); // the disk took 1000 bytes only
      // Lines keep coming while the rest waits for its retry: they must not land in its buffers.
      for (let i = 0; i < 600; i++) w.write(text('x'));
      await new Promise((r) => setTimeout(r, 20));
      expect(calls.length).toBeGreaterThanOrEqual(2);
      const retried = Buffer.concat(calls[1]!.bufs).toString('latin1');
      const expected = `${text('a').repeat(262)}${text('b').repeat(262)}`.slice(1000);
      expect(retried.startsWith(expected)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  /**
   * A disk behind an injected `fs.writev`: it takes at most `free` bytes (a short write), then
   * answers ENOSPC; `hold` keeps the next writes pending until `release`. What each descriptor got
   * is in `files`.
   */
  function fakeDisk() {
    const disk = {
      free: Number.POSITIVE_INFINITY,
      hold: false,
      files: new Map<number, string>(),
      held: [] as { fd: number; bufs: Buffer[]; cb: (e: Error | null, n: number) => void }[],
      release(fd: number, bufs: Buffer[], cb: (e: Error | null, n: number) => void, take?: number) {
        const bytes = Buffer.concat(bufs);
        const n = Math.min(take ?? disk.free, bytes.length);
        if (n === 0 && bytes.length > 0) {
          const err = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          setImmediate(() => cb(err, 0));
          return;
        }
        disk.free -= n;
        disk.files.set(fd, (disk.files.get(fd) ?? '') + bytes.toString('latin1', 0, n));
        setImmediate(() => cb(null, n));
      },
    };
    const spy = vi.spyOn(fs, 'writev').mockImplementation(((
      fd: number,
      bufs: Buffer[],
      _pos: null,
      cb: (e: Error | null, n: number) => void,
    ) => {
      if (disk.hold) disk.held.push({ fd, bufs, cb });
      else disk.release(fd, bufs, cb);
    }) as never);
    return { disk, restore: () => spy.mockRestore() };
  }

  /** A 1000-byte JSON line numbered `i`. */
  const kline = (i: number) => `{"n":${i},"pad":"${'k'.repeat(1000 - 18 - String(i).length)}"}\n`;
  const numbers = (text: string) =>
    text
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l).n as number);

  it('on a full disk finishes the line a short write cut before anything else, and counts the lines lost', async () => {
    const { disk, restore } = fakeDisk();
    try {
      const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'full.log');
      const errors: Error[] = [];
      const w = new LineWriter(file, (e) => errors.push(e));
      disk.free = 2500; // lines 0 and 1, and half of line 2
      for (let i = 0; i < 10; i++) w.write(kline(i));
      await new Promise((r) => setTimeout(r, 200)); // flushed, cut, then ENOSPC and retried meanwhile
      const [out] = [...disk.files.keys()];
      expect(disk.files.get(out!)!.length).toBe(2500);
      expect(w.dropped).toBe(7); // lines 3 to 9; the rest of line 2 waits for room
      disk.free = Number.POSITIVE_INFINITY; // a filler file was removed
      w.write(kline(10));
      await w.drain();
      expect(numbers(disk.files.get(out!)!)).toEqual([0, 1, 2, 10]);
      expect(disk.files.get(out!)!.endsWith('\n')).toBe(true);
      expect(w.dropped).toBe(7);
      expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOSPC']);
    } finally {
      restore();
    }
  });

  it('after a reopen, never writes the rest of a line cut in the old file to the new one', async () => {
    const { disk, restore } = fakeDisk();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-lw-'));
      const file = join(dir, 'r.log');
      // Cut while waiting for its retry, and cut by a write still in flight during the reopen.
      for (const inFlight of [false, true]) {
        disk.files.clear();
        disk.held.length = 0;
        disk.hold = true;
        const w = new LineWriter(file, () => undefined);
        for (let i = 0; i < 10; i++) w.write(kline(i));
        await new Promise((r) => setTimeout(r, 150));
        expect(disk.held).toHaveLength(1);
        const first = disk.held.shift()!;
        if (!inFlight) {
          disk.release(first.fd, first.bufs, first.cb, 2500);
          await new Promise((r) => setImmediate(r)); // the rest waits RETRY_AFTER_MS
        }
        renameSync(file, `${file}.1`);
        expect(w.reopen()).toBeNull();
        if (inFlight) disk.release(first.fd, first.bufs, first.cb, 2500);
        disk.hold = false;
        w.write(kline(10));
        await w.drain();
        expect(disk.files.get(first.fd)!.length).toBe(2500);
        const [, next] = [...disk.files.entries()].find(([fd]) => fd !== first.fd)!;
        expect(numbers(next)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
        expect(w.dropped).toBe(1); // line 2, cut in the old file
      }
    } finally {
      restore();
    }
  });

  it('flushSync writes what is queued when nothing is in flight', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'c.log');
    const w = new LineWriter(file, () => undefined);
    for (let i = 0; i < 100; i++) w.write(line(i));
    w.flushSync();
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(101);
  });
});
