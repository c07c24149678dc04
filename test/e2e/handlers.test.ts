/**
 * `sluice serve APP` with handler modules in TypeScript (contract section 5), both styles: the
 * examples (a 2 s wait, then the path) answer a thousand concurrent requests together; handler
 * errors (a synchronous throw, a rejection) cost their request a 500 problem document tied to a
 * log line by its request id, never the worker; an uncaught exception from a timer does not kill
 * the worker either; `close()` runs on shutdown; handlers run as the unprivileged user; and
 * serving a handler as root without `--user` is refused. Access log files: `--access-log FILE|off`,
 * and workers running as `nobody` keep logging to their file across logrotate and a reload, while no
 * root process follows a symlink planted at its path.
 */
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  ROOT,
  requireBuilt,
  runCli,
  spawnCli,
  startConfigured,
  waitForPort,
} from '../helpers/cli.js';
import { alive, get, sharedTempDir, until, waitForChild } from '../helpers/runtime.js';

const CONCURRENT = 1000;

/** The JSON lines of a log file ([] while it does not exist). */
async function readLines(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `sluice serve APP --port P --host 127.0.0.1 --workers 2 --user nobody [EXTRA]`, once it serves. */
async function serve(
  app: string,
  extra: readonly string[] = [],
): Promise<{ sluice: CliProcess; port: number; workerPids: number[] }> {
  const port = await freePort();
  const sluice = spawnCli([
    'serve',
    app,
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--workers',
    '2',
    '--user',
    'nobody',
    ...extra,
  ]);
  await waitForPort(port, { proc: sluice, timeoutMs: 20_000 });
  const [started] = await sluice.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
  await sluice.waitForJson((l) => l.msg === 'serving', 1, 5000);
  const workerPids = started!.workers as number[];
  expect(workerPids).toHaveLength(2);
  return { sluice, port, workerPids };
}

describe.each([
  ['fetch', 'examples/slow-path.ts'],
  ['Node listener', 'examples/slow-path-listener.ts'],
])('sluice serve %s style (%s), workers 2, user nobody', (style, example) => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  it(`answers after 2 s, and ${CONCURRENT} concurrent requests together in well under 6 s`, async () => {
    const { sluice, port } = await serve(example);
    const t0 = performance.now();
    const one = await get(port, '/some/path');
    const single = performance.now() - t0;
    expect(one.status).toBe(200);
    expect(one.body).toBe('/some/path\n');
    expect(one.headers['content-type']).toBe('text/plain');
    expect(single).toBeGreaterThanOrEqual(1900);
    expect(single).toBeLessThan(5000);

    const agent = new Agent({ connections: CONCURRENT, pipelining: 1 });
    try {
      const started = performance.now();
      const answers = await Promise.all(
        Array.from({ length: CONCURRENT }, async (_, i) => {
          const res = await request(`http://127.0.0.1:${port}/c/${i}`, { dispatcher: agent });
          return { i, status: res.statusCode, body: await res.body.text() };
        }),
      );
      const elapsed = performance.now() - started;
      console.log(
        `sluice serve ${example} (${style}): one request ${Math.round(single)} ms; ` +
          `${CONCURRENT} concurrent 2 s requests in ${Math.round(elapsed)} ms`,
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.body).toBe(`/c/${a.i}\n`);
      }
      // Together: every one waited its 2 s, and they did not queue behind each other.
      expect(elapsed).toBeGreaterThanOrEqual(1900);
      expect(elapsed).toBeLessThan(6000);
    } finally {
      await agent.close();
    }
    // Every request has its access line, and both workers took part.
    const access = await sluice.waitForJson(
      (l) => l.msg === 'request' && String(l.path).startsWith('/c/'),
      CONCURRENT,
    );
    expect(access).toHaveLength(CONCURRENT);
    expect(new Set(access.map((l) => l.pid)).size).toBe(2);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  }, 40_000);
});

/** A handler of each style with error paths, a uid probe and a close() that leaves a marker file. */
function errorHandler(style: 'fetch' | 'listener', marks: string): string {
  const close = `
export function close(): void {
  writeFileSync(join(${JSON.stringify(marks)}, \`${style}-\${process.pid}\`), 'closed\\n');
}
`;
  if (style === 'fetch') {
    return `import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export default {
  // Not async: /throw throws synchronously, /reject returns a rejected promise.
  fetch(request: Request): Response | Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === '/throw') throw new Error('thrown by the fetch handler');
    if (path === '/reject') return Promise.reject(new Error('rejected by the fetch handler'));
    if (path === '/uncaught') {
      setTimeout(() => {
        throw new Error('thrown in a timer by the fetch handler');
      }, 10);
      return new Response('scheduled\\n');
    }
    if (path === '/uid') return new Response(\`\${process.getuid?.()} \${process.getgid?.()}\\n\`);
    return new Response(\`ok \${process.pid}\\n\`, { headers: { 'content-type': 'text/plain' } });
  },
};
${close}`;
  }
  return `import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';

export default function app(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/throw') throw new Error('thrown by the listener');
  if (path === '/reject') return Promise.reject(new Error('rejected by the listener'));
  if (path === '/uncaught') {
    setTimeout(() => {
      throw new Error('thrown in a timer by the listener');
    }, 10);
    res.end('scheduled\\n');
    return;
  }
  if (path === '/uid') {
    res.end(\`\${process.getuid?.()} \${process.getgid?.()}\\n\`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(\`ok \${process.pid}\\n\`);
}
${close}`;
}

describe.each([
  ['fetch', 'thrown by the fetch handler', 'rejected by the fetch handler'],
  ['listener', 'thrown by the listener', 'rejected by the listener'],
] as const)('a %s handler: errors, uncaught exceptions, privileges, close()', (style, thrown, rejected) => {
  let tmp: Awaited<ReturnType<typeof sharedTempDir>>;
  let marks: string;
  let app: string;

  beforeAll(async () => {
    requireBuilt();
    tmp = await sharedTempDir();
    // close() runs as nobody: it writes its marker into a directory anyone may write to.
    marks = join(tmp.path, 'marks');
    await mkdir(marks);
    await chmod(marks, 0o777);
    app = await tmp.write(`errors-${style}.ts`, errorHandler(style, marks));
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  it('answers 500 problem+json tied to a logged stack; the workers go on; close() runs on SIGTERM', async () => {
    const { sluice, port, workerPids } = await serve(app);

    // Privileges are dropped: the handler runs as nobody (uid 65534, gid 65534). Started by
    // another user, sluice cannot switch users and --user changes nothing.
    const root = process.getuid?.() === 0;
    expect(await get(port, '/uid')).toMatchObject({
      status: 200,
      body: root ? '65534 65534\n' : `${process.getuid?.()} ${process.getgid?.()}\n`,
    });

    for (const [path, message] of [
      ['/throw', thrown],
      ['/reject', rejected],
    ] as const) {
      const res = await get(port, path);
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toBe('application/problem+json');
      const doc = JSON.parse(res.body) as Record<string, unknown>;
      expect(doc).toMatchObject({ status: 500, code: 'SLUICE_E_HANDLER_ERROR' });
      expect(doc.request_id).toMatch(/^[0-9a-f]{24}$/);
      expect(res.headers['x-sluice-error-id']).toBe(doc.request_id);
      // The internal error is not shown to the client.
      expect(res.body).not.toContain(message);
      const [line] = await sluice.waitForJson(
        (l) => l.level === 'error' && /handler failed/.test(String(l.msg)) && l.request_id === doc.request_id,
      );
      const err = line!.err as { message?: string; stack?: string };
      expect(err.message).toBe(message);
      expect(err.stack).toContain(`Error: ${message}`);
      expect(err.stack).toContain(`errors-${style}.ts`);
      expect(line).toMatchObject({ path, route: 'app' });
      expect(workerPids).toContain(line!.pid);
      const [access] = await sluice.waitForJson(
        (l) => l.msg === 'request' && l.request_id === doc.request_id,
      );
      expect(access).toMatchObject({ status: 500, path });
    }

    // An exception thrown from a timer is uncaught: logged, and the worker goes on.
    const scheduled = await get(port, '/uncaught');
    expect(scheduled).toMatchObject({ status: 200, body: 'scheduled\n' });
    const [uncaught] = await sluice.waitForJson((l) => /uncaught exception in a worker/.test(String(l.msg)));
    expect(uncaught).toMatchObject({ level: 'error' });
    expect((uncaught!.err as { message?: string }).message).toMatch(/thrown in a timer/);
    expect(workerPids).toContain(uncaught!.pid);

    // Both workers still serve, the same processes as before the errors.
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const res = await get(port, `/after/${i}`);
      expect(res.status).toBe(200);
      const pid = Number(/^ok (\d+)\n$/.exec(res.body)?.[1]);
      expect(workerPids).toContain(pid);
      pids.add(pid);
    }
    expect(pids.size).toBe(2);
    const lines = sluice.jsonLines();
    expect(lines.some((l) => /worker died|worker restarted|crash loop/.test(String(l.msg)))).toBe(false);

    // SIGTERM: each worker calls the handler's close() before it exits; the primary exits 0.
    expect(await readdir(marks)).toEqual([]);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect((await readdir(marks)).sort()).toEqual(workerPids.map((pid) => `${style}-${pid}`).sort());
    expect(sluice.jsonLines().some((l) => l.msg === 'handler close() failed')).toBe(false);
  }, 40_000);
});

describe('sluice serve --handler-timeout', () => {
  let tmp: Awaited<ReturnType<typeof sharedTempDir>>;
  let app: string;

  beforeAll(async () => {
    requireBuilt();
    tmp = await sharedTempDir();
    // The callback that would have answered throws: the worker logs it and goes on, and nothing
    // answers the request. The client waited until it gave up (then logged 499).
    app = await tmp.write(
      'lost.ts',
      `import type { IncomingMessage, ServerResponse } from 'node:http';
export default function app(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/ok') {
    res.end('ok\\n');
    return;
  }
  setTimeout(() => {
    throw new Error('thrown before the answer');
  }, 10);
}
`,
    );
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  it('answers 504 when the callback that would have answered threw; the worker goes on', async () => {
    const { sluice, port, workerPids } = await serve(app, ['--handler-timeout', '500ms']);
    const started = Date.now();
    const res = await get(port, '/lost');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(504);
    const doc = JSON.parse(res.body) as Record<string, unknown>;
    expect(doc).toMatchObject({ status: 504, code: 'SLUICE_E_HANDLER_TIMEOUT' });
    const [uncaught] = await sluice.waitForJson((l) => /uncaught exception in a worker/.test(String(l.msg)));
    expect((uncaught!.err as { message?: string }).message).toBe('thrown before the answer');
    const [access] = await sluice.waitForJson((l) => l.msg === 'request' && l.path === '/lost');
    expect(access).toMatchObject({
      status: 504,
      error: 'SLUICE_E_HANDLER_TIMEOUT',
      request_id: doc.request_id,
    });
    expect(await get(port, '/ok')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(sluice.jsonLines().some((l) => /worker died|worker restarted/.test(String(l.msg)))).toBe(false);
    expect(workerPids).toContain(access!.pid);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  }, 40_000);
});

describe('access log files: sluice serve --access-log, and workers running as user: nobody', () => {
  let tmp: Awaited<ReturnType<typeof sharedTempDir>>;
  let app: string;
  beforeAll(async () => {
    requireBuilt();
    tmp = await sharedTempDir('sluice-serve-log-');
    app = await tmp.write(
      'hello.ts',
      "import type { IncomingMessage, ServerResponse } from 'node:http';\n" +
        "export default (_req: IncomingMessage, res: ServerResponse): void => { res.end('hello\\n'); };\n",
    );
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  it('FILE: access lines go to the file, which the workers (user nobody) reopen after logrotate', async () => {
    const file = join(tmp.path, 'logs', 'access.log');
    const { sluice, port, workerPids } = await serve(app, ['--access-log', file]);
    for (let i = 0; i < 4; i++) expect((await get(port, `/file/${i}`)).status).toBe(200);
    // logrotate: move the file, then SIGUSR1; the workers open a new file under the same name.
    await until(async () => ((await readLines(file)).length === 4 ? true : undefined), 'the 4 lines', 5000);
    await rename(file, `${file}.1`);
    sluice.signal('SIGUSR1');
    await sluice.waitForJson(
      (l) => l.msg === 'log files reopened' && workerPids.includes(l.pid as number),
      2,
    );
    for (let i = 0; i < 2; i++) expect((await get(port, `/rotated/${i}`)).status).toBe(200);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });

    const before = await readLines(`${file}.1`);
    const after = await readLines(file);
    expect(before.map((l) => l.path).sort()).toEqual(['/file/0', '/file/1', '/file/2', '/file/3']);
    expect(after.map((l) => l.path).sort()).toEqual(['/rotated/0', '/rotated/1']);
    for (const l of [...before, ...after]) {
      expect(l).toMatchObject({ msg: 'request', status: 200, route: 'app' });
      expect(workerPids).toContain(l.pid);
    }
    // Started as root, the primary gives the file to the workers' user (as nginx does).
    if (process.getuid?.() === 0) expect((await stat(file)).uid).toBe(65534);
    const lines = sluice.jsonLines();
    expect(lines.some((l) => l.msg === 'request')).toBe(false);
    expect(lines.some((l) => /cannot open log file/.test(String(l.msg)))).toBe(false);
    expect(sluice.stderr()).not.toMatch(/cannot open log file/);
  }, 40_000);

  it.runIf(process.getuid?.() === 0)(
    "FILE as a symlink the workers' user planted: no root process follows it",
    async () => {
      // The workers' user owns the log directory and points access.log at a file only root may create.
      const dir = join(tmp.path, 'planted');
      await mkdir(dir);
      await chown(dir, 65534, 65534);
      const target = join(tmp.path, 'root-only', 'created-by-root');
      await mkdir(dirname(target), { mode: 0o700 });
      await symlink(target, join(dir, 'access.log'));
      const { sluice, port } = await serve(app, ['--access-log', join(dir, 'access.log')]);
      expect((await get(port, '/planted')).status).toBe(200);
      const [warning] = await sluice.waitForJson((l) => /cannot give the access log/.test(String(l.msg)));
      expect(String(warning!.msg)).toMatch(/ELOOP/);
      sluice.signal('SIGTERM');
      expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
      expect(existsSync(target)).toBe(false);
      // The workers, unable to open it, log to stdout and say so.
      expect(sluice.stderr()).toMatch(/cannot open log file/);
      expect(sluice.jsonLines().some((l) => l.msg === 'request' && l.path === '/planted')).toBe(true);
    },
    40_000,
  );

  it.runIf(process.getuid?.() === 0)(
    'sluice start with user: nobody: a reload that moves log.access gives the new file to the workers',
    async () => {
      const port = await freePort();
      const yaml = (file: string) => `version: 1
workers: 1
user: nobody
log: { access: ${JSON.stringify(file)} }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - { name: hello, respond: { status: 200, body: "hello\\n" } }
`;
      const first = join(tmp.path, 'first', 'access.log');
      const second = join(tmp.path, 'second', 'access.log');
      const sluice = await startConfigured(tmp.path, yaml(first), port);
      expect((await get(port, '/one')).status).toBe(200);
      await writeFile(join(tmp.path, 'sluice.yaml'), yaml(second));
      sluice.signal('SIGHUP');
      await sluice.waitForJson((l) => l.msg === 'config reloaded');
      expect((await get(port, '/two')).status).toBe(200);
      sluice.signal('SIGTERM');
      expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
      expect((await readLines(first)).map((l) => l.path)).toEqual(['/one']);
      expect((await readLines(second)).map((l) => l.path)).toEqual(['/two']);
      expect((await stat(second)).uid).toBe(65534);
      expect(sluice.stderr()).not.toMatch(/cannot open log file/);
    },
    40_000,
  );

  it('SIGHUP deploys a new version of the app: new workers load it, the old ones drain', async () => {
    const versioned = await tmp.write(
      'versioned.ts',
      "export default (_req: unknown, res: { end(s: string): void }): void => { res.end('v1\\n'); };\n",
    );
    const { sluice, port, workerPids } = await serve(versioned, ['--access-log', 'off']);
    expect((await get(port, '/')).body).toBe('v1\n');
    await writeFile(
      versioned,
      "export default (_req: unknown, res: { end(s: string): void }): void => { res.end('v2\\n'); };\n",
    );
    sluice.signal('SIGHUP');
    const [reloaded] = await sluice.waitForJson((l) => l.msg === 'config reloaded', 1, 20_000);
    expect(reloaded).toMatchObject({ how: 'roll' });
    for (let i = 0; i < 4; i++) expect((await get(port, `/after/${i}`)).body).toBe('v2\n');
    await until(
      () => (workerPids.every((pid) => !alive(pid)) ? true : undefined),
      'the old workers to exit',
      15_000,
    );
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('off: no access lines anywhere; the app log still reports', async () => {
    const { sluice, port } = await serve(app, ['--access-log', 'off']);
    for (let i = 0; i < 4; i++) expect((await get(port, `/off/${i}`)).status).toBe(200);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    const lines = sluice.jsonLines();
    expect(lines.some((l) => l.msg === 'request')).toBe(false);
    expect(lines.some((l) => l.msg === 'sluice stopped')).toBe(true);
  }, 40_000);
});

describe('sluice serve as root without --user', () => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  it('names a missing app module in its own terms: exit 2', async () => {
    const res = await runCli(['serve', 'no-such-app.ts', '--port', String(await freePort())]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe('sluice serve: no-such-app.ts: no such file\n');
  });

  it.each(['abc', '99999'])('names a $PORT that is no port (%s): exit 2', async (value) => {
    const res = await runCli(['serve', 'no-such-app.ts'], { env: { PORT: value } });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `sluice serve: $PORT is "${value}", not a port number (give --port or fix $PORT)\n`,
    );
  });

  // Node's SyntaxError from an ES module import has no position of its own.
  it('says on which line an app module has a syntax error: exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bad-app-'));
    try {
      await writeFile(join(dir, 'bad.mjs'), 'export default () => {};\nconst y = ;\n');
      const res = await runCli(['serve', 'bad.mjs', '--allow-root', '--port', String(await freePort())], {
        cwd: dir,
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `cannot load handler ${join(dir, 'bad.mjs')}: ${join(dir, 'bad.mjs')}:2: Unexpected token ';'`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Outside a "type": "module" package Node parses a .js as CommonJS, then as ESM when it has
  // module syntax; `node --check` did the first only (and passed), and the line was lost.
  it('says on which line a .js app with ES syntax in no "type": "module" package fails to parse', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bad-app-'));
    try {
      await writeFile(join(dir, 'bad.js'), 'export default (req, res) => {\n  res.end("x"\n};\n');
      // Run-time SyntaxErrors are no syntax errors of the module: their line is where they were
      // thrown, not one made up by parsing the file.
      await writeFile(join(dir, 'json.js'), "export default () => undefined;\nJSON.parse('{');\n");
      const serve = async (app: string) =>
        runCli(['serve', app, '--allow-root', '--port', String(await freePort())], { cwd: dir });
      const bad = await serve('bad.js');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(
        `cannot load handler ${join(dir, 'bad.js')}: ${join(dir, 'bad.js')}:2: missing ) after argument list`,
      );
      const json = await serve('json.js');
      expect(json.code).toBe(1);
      expect(json.stderr).toMatch(
        new RegExp(`cannot load handler \\S+json\\.js: ${join(dir, 'json.js')}:2: [^/\\n]*JSON`),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Only the first line of the error's message was said: "top-level throw", "Unexpected token ';'"
  // (where Node itself prints dep.js:1).
  it('says where an app module threw while loading, or which of its imports fails to parse', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bad-app-'));
    try {
      await writeFile(
        join(dir, 'throws.ts'),
        "const n: number = 1;\nif (n) throw new Error('top-level throw');\nexport default {};\n",
      );
      await writeFile(join(dir, 'dep.js'), 'const x = ;\n');
      await writeFile(join(dir, 'imports.mjs'), "import './dep.js';\nexport default () => undefined;\n");
      const serve = async (app: string) =>
        runCli(['serve', app, '--allow-root', '--port', String(await freePort())], { cwd: dir });
      const throws = await serve('throws.ts');
      expect(throws.code).toBe(1);
      expect(throws.stderr).toContain(
        `SLUICE_E_HANDLER_LOAD cannot load handler ${join(dir, 'throws.ts')}: ${join(dir, 'throws.ts')}:2: top-level throw`,
      );
      const imports = await serve('imports.mjs');
      expect(imports.code).toBe(1);
      expect(imports.stderr).toContain(
        `cannot load handler ${join(dir, 'imports.mjs')}: ${join(dir, 'dep.js')}:1: Unexpected token ';'`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // It failed after 30 s with a raw stack and no code: "sluice: Error: worker N not ready after
  // 30000 ms at Timeout.<anonymous> (…primary.js)", where a reload said SLUICE_E_RUNTIME_WORKER.
  it('says which handler never finished loading: SLUICE_E_RUNTIME_WORKER, exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-hung-app-'));
    try {
      await writeFile(
        join(dir, 'hangs.mjs'),
        'await new Promise(() => {});\nexport default () => undefined;\n',
      );
      const res = await runCli(
        ['serve', 'hangs.mjs', '--allow-root', '--workers', '1', '--port', String(await freePort())],
        { cwd: dir, timeoutMs: 50_000 },
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        new RegExp(
          `^sluice: SLUICE_E_RUNTIME_WORKER worker \\d+ not ready after 30 s: handler ${join(dir, 'hangs.mjs')} did not finish loading \\(hint: .*top-level await`,
          'm',
        ),
      );
      expect(res.stderr).not.toContain('    at ');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it.runIf(process.getuid?.() === 0)(
    'is refused: exit 2, SLUICE_E_HANDLER_ROOT, nothing served',
    async () => {
      const port = await freePort();
      const res = await runCli([
        'serve',
        join(ROOT, 'examples/slow-path.ts'),
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--workers',
        '1',
      ]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/^sluice: SLUICE_E_HANDLER_ROOT refusing to run handlers as root/);
      // In the command's terms: its flags, not config keys.
      expect(res.stderr).toContain('(hint: pass --user (and --group)');
      expect(res.stdout).toBe('');
      await expect(waitForPort(port, { timeoutMs: 200 })).rejects.toThrow();
    },
  );

  // The refusal is about the uid the workers end up with: `--user root` or `--user 0` is root.
  it.runIf(process.getuid?.() === 0).each(['root', '0'])(
    '--user %s is refused as root too: exit 2, SLUICE_E_HANDLER_ROOT',
    async (user) => {
      const port = await freePort();
      const res = await runCli([
        'serve',
        join(ROOT, 'examples/slow-path.ts'),
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--workers',
        '1',
        '--user',
        user,
      ]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        new RegExp(
          `^sluice: SLUICE_E_HANDLER_ROOT refusing to run handlers as root \\(user: ${user} is uid 0\\)`,
        ),
      );
      await expect(waitForPort(port, { timeoutMs: 200 })).rejects.toThrow();
    },
  );
});

describe('sluice serve on an IPv6 address', () => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  // It logged "http://::1:PORT", which is no URL (RFC 3986 3.2.2: an IPv6 literal is bracketed).
  it('logs the URL it serves on with the address in brackets', async () => {
    const port = await freePort();
    const sluice = spawnCli([
      'serve',
      join(ROOT, 'examples/slow-path.ts'),
      '--port',
      String(port),
      '--host',
      '::1',
      '--workers',
      '1',
      '--user',
      'nobody',
    ]);
    const [serving] = await sluice.waitForJson((l) => l.msg === 'serving', 1, 20_000);
    expect(serving!.url).toBe(`http://[::1]:${port}`);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  });
});

describe('signals while sluice serve starts', () => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  // An app that takes a while to load: Node's default for SIGHUP ended the process (exit 129)
  // before sluice had installed its own handlers.
  it.each([
    ['SIGHUP', 'keeps starting, then serves (the reload is carried out once it serves)'],
    ['SIGTERM', 'finishes starting, then stops with exit 0'],
  ] as const)(
    '%s: %s',
    async (signal, _what) => {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-slow-start-'));
      try {
        await writeFile(
          join(dir, 'slow.mjs'),
          "await new Promise((r) => setTimeout(r, 1500));\nexport default (req, res) => res.end('up\\n');\n",
        );
        const port = await freePort();
        const p = spawnCli(['serve', 'slow.mjs', '--allow-root', '--workers', '1', '--port', String(port)], {
          cwd: dir,
        });
        await waitForChild(p.pid);
        p.signal(signal);
        if (signal === 'SIGHUP') {
          await waitForPort(port, { timeoutMs: 15_000 });
          expect((await get(port, '/')).body).toBe('up\n');
          expect(p.exited()).toBeNull();
          await p.waitForJson((l) => String(l.msg).includes('reload'), 1, 15_000);
          p.signal('SIGTERM');
        }
        expect(await p.waitForExit(20_000)).toEqual({ code: 0, signal: null });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    40_000,
  );
});

describe('a second stop signal while sluice serve starts', () => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  // A first stop while the workers start stops at once (the one still loading is ended, the one
  // listening drains its request); a second one does not wait for that drain.
  it('exits 1 at once, without waiting for the drain the first one began', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-slow-start-'));
    try {
      // The first worker to load serves (answering after 5 s); the second takes 20 s to load.
      await writeFile(
        join(dir, 'slow.mjs'),
        `import { writeFileSync } from 'node:fs';
let first = true;
try { writeFileSync(new URL('./first', import.meta.url), '', { flag: 'wx' }); } catch { first = false; }
if (!first) await new Promise((r) => setTimeout(r, 20_000));
export default (req, res) => setTimeout(() => res.end('up\\n'), 5000);
`,
      );
      const port = await freePort();
      const p = spawnCli(['serve', 'slow.mjs', '--allow-root', '--workers', '2', '--port', String(port)], {
        cwd: dir,
      });
      await waitForPort(port, { timeoutMs: 15_000 });
      const inFlight = get(port, '/', 15_000).catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 300));
      p.signal('SIGTERM');
      await p.waitForJson((l) => l.msg === 'stopping while starting', 1, 5000);
      const sentAt = Date.now();
      p.signal('SIGTERM');
      expect(await p.waitForExit(10_000)).toEqual({ code: 1, signal: null });
      expect(Date.now() - sentAt).toBeLessThan(2000);
      expect(p.stderr()).toContain('second SIGTERM while starting, exiting now');
      await inFlight;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('an app module the workers cannot read', () => {
  beforeAll(requireBuilt);
  afterEach(killAll);

  // The loader called it "Cannot find module", and `sluice check` (run as root) passed it.
  it.runIf(process.getuid?.() === 0)('says permission denied, naming the user: exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-private-'));
    try {
      await mkdir(join(dir, 'private'), { mode: 0o700 });
      await writeFile(join(dir, 'private', 'app.mjs'), "export default (req, res) => res.end('x');\n");
      const res = await runCli(
        [
          'serve',
          'private/app.mjs',
          '--user',
          'nobody',
          '--workers',
          '1',
          '--port',
          String(await freePort()),
        ],
        { cwd: dir },
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `cannot load handler ${join(dir, 'private', 'app.mjs')}: permission denied: user nobody cannot read it, or cannot enter a directory on its path`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
