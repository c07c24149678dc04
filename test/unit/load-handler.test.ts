/** Loading handler modules: what a module that cannot load is reported as. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadHandler } from '../../src/handlers/load-handler.js';

describe('loadHandler', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-load-handler-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const failure = (path: string) =>
    loadHandler(path).then(
      () => {
        throw new Error('loaded');
      },
      (err: Error & { code?: string }) => ({ code: err.code, message: err.message }),
    );

  it('loads both styles', async () => {
    const listener = await loadHandler(file('l.mjs', 'export default (req, res) => res.end("x");\n'));
    expect(listener.kind).toBe('listener');
    const fetchApp = await loadHandler(
      file('f.ts', 'export default { fetch: (r: Request) => new Response("x") };\n'),
    );
    expect(fetchApp.kind).toBe('fetch');
  });

  // The compiler's first line was all the message had: "Transform failed with 1 error:".
  it('says where a TypeScript module fails to compile', async () => {
    const path = file('bad.ts', 'export default { fetch( { syntax error\n');
    const r = await failure(path);
    expect(r.code).toBe('SLUICE_E_HANDLER_LOAD');
    expect(r.message).toBe(
      `cannot load handler ${path}: ${path}:1:33: ERROR: Expected "}" but found "error"`,
    );
  });

  // A SyntaxError thrown at run time is no syntax error of the module: its place is where it was
  // thrown, never a position made up by parsing the file. (Exact lines are checked with the built
  // CLI: the test runner maps positions its own way.)
  it('reports a SyntaxError thrown while loading where it was thrown', async () => {
    const path = file('json.ts', "JSON.parse('{');\nexport default () => undefined;\n");
    const r = await failure(path);
    expect(r.message).toMatch(new RegExp(`^cannot load handler ${path}: ${path}:\\d+: [^/]*JSON`));
  });

  // The message's first line was all it said: "cannot load handler …: top-level throw".
  it('says where a module that throws while it loads threw', async () => {
    const path = file(
      'throws.ts',
      "const n: number = 1;\nif (n) throw new Error('top-level throw');\nexport default {};\n",
    );
    const r = await failure(path);
    expect(r.code).toBe('SLUICE_E_HANDLER_LOAD');
    expect(r.message).toMatch(new RegExp(`^cannot load handler ${path}: ${path}:\\d+: top-level throw$`));
  });

  // tsx's ESM API loaded such a module from a data: URL holding its compiled source, which every
  // stack frame then carried into the logs (5 KB a frame), with positions in the compiled code.
  it('names the .ts file and line in stack traces of a module in a CommonJS package', async () => {
    const path = file(
      'cjs-app.ts',
      "const n: number = 1;\nexport default {\n  fetch(): Response {\n    if (n > 0) throw new Error('boom');\n    return new Response('x');\n  },\n};\n",
    );
    const h = await loadHandler(path);
    if (h.kind !== 'fetch') throw new Error(h.kind);
    const err = (() => {
      try {
        h.app.fetch(new Request('http://x/'));
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    })();
    const frame = err.stack?.split('\n')[1] ?? '';
    // (The line is checked with the built CLI: the test runner maps positions its own way.)
    expect(frame).toContain(`(${path}:`);
    expect(frame).not.toContain('data:');
  });

  // Node's import() of a CommonJS .js gives module.exports as the default export; tsx's require
  // hands back module.exports itself, so the same module as .ts "exported no default".
  it.each([
    [
      'listener.ts',
      "module.exports = (req: unknown, res: { end(s: string): void }) => res.end('x');\n",
      'listener',
    ],
    ['listener.js', "module.exports = (req, res) => res.end('x');\n", 'listener'],
    ['export-assign.ts', "export = { fetch: () => new Response('x') };\n", 'fetch'],
    ['app.cts', "module.exports = { fetch: () => new Response('x') };\n", 'fetch'],
  ])('loads CommonJS %s, whose module.exports is the handler', async (name, text, kind) => {
    expect((await loadHandler(file(name, text))).kind).toBe(kind);
  });

  it('calls the close() a CommonJS .ts module exports beside its handler', async () => {
    const path = file(
      'closing.ts',
      'let closed = 0;\nmodule.exports = (req: unknown, res: { end(s: string): void }) => res.end(String(closed));\nmodule.exports.close = () => { closed++; (globalThis as { closedCjs?: number }).closedCjs = closed; };\n',
    );
    const h = await loadHandler(path);
    expect(h.kind).toBe('listener');
    await h.close();
    expect((globalThis as { closedCjs?: number }).closedCjs).toBe(1);
  });

  it('names what the module exported when it is no handler', async () => {
    const r = await failure(file('n.mjs', 'export default 42;\n'));
    expect(r.code).toBe('SLUICE_E_HANDLER_LOAD');
  });
});
