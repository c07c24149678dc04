import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineWriter } from '../../src/observability/line-writer.js';

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

  it('on a pipe, the reader gets every line whole and in order', async () => {
    // A child process writes through a pipe we read; lines must arrive whole and in order.
    const script = `
      import { LineWriter } from ${JSON.stringify(join(process.cwd(), 'src/observability/line-writer.ts'))};
      const w = new LineWriter(1, (e) => { process.stderr.write(String(e)); });
      let n = 0;
      const tick = () => {
        for (let i = 0; i < 400; i++) w.write(JSON.stringify({ n: n++, pad: 'z'.repeat(n % 200) }) + '\\n');
        if (n < 20000) setImmediate(tick); else void w.drain();
      };
      tick();
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
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
    expect(err).toBe('');
    const lines = out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(20_000);
    expect(lines.map((l) => JSON.parse(l).n)).toEqual(lines.map((_, i) => i));
  }, 30_000);

  it('flushSync writes what is queued when nothing is in flight', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'c.log');
    const w = new LineWriter(file, () => undefined);
    for (let i = 0; i < 100; i++) w.write(line(i));
    w.flushSync();
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(101);
  });
});
