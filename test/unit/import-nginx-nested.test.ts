/**
 * Nested locations, imported and asked through sluice's real router, against a real nginx
 * serving the same config on a loopback port: every path goes to the same location in both
 * (nginx's tree search: deeper levels first, `^~` per level, a longer prefix beside a parent
 * shadowing what is nested in it). Skipped when nginx is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { importNginx } from '../../src/ops/import-nginx/import-nginx.js';
import { RouteTable } from '../../src/router/route-table.js';
import { freePort, waitForPort } from '../helpers/cli.js';
import { http } from '../helpers/http.js';

const nginx = ['/usr/sbin/nginx', 'nginx'].find((bin) => spawnSync(bin, ['-v']).status === 0);

/** Each location answers its own name, so the two can be compared path by path. */
const SERVER = `
    location / { return 200 "root"; }
    location /a/ {
        return 200 "a";
        location /a/b/ {
            return 200 "a/b";
            location ~ \\.x$ { return 200 "a/b ~x"; }
            location = /a/b/e { return 200 "= a/b/e"; }
        }
        location ^~ /a/c/ {
            return 200 "^~ a/c";
            location ~ \\.x$ { return 200 "a/c ~x"; }
        }
        location ~ \\.x$ { return 200 "a ~x"; }
        location ~ ^/a/z { return 200 "a ~z"; }
        location /a/b/c/d/ { return 200 "a/b/c/d (shadowed)"; }
        location = /a/b/c/e { return 200 "= a/b/c/e (shadowed)"; }
    }
    location /a/b/c/ { return 200 "a/b/c"; }
    location ^~ /s/ {
        return 200 "^~ s";
        location /s/t/ { return 200 "s/t"; }
        location ~ \\.x$ { return 200 "s ~x"; }
    }
    location ~ \\.x$ { return 200 "~x"; }
    location ~ \\.y$ { return 200 "~y"; }
    location = /a/exact { return 200 "= a/exact"; }
    location /p/ {
        return 200 "p";
        location ^~ /p/q/ { return 200 "^~ p/q"; }
        location ~ \\.y$ { return 200 "p ~y"; }
    }
`;

const PATHS = [
  '/',
  '/x.x',
  '/x.y',
  '/a/',
  '/a/q.x',
  '/a/q.y',
  '/a/b/',
  '/a/b/q.x',
  '/a/b/q.y',
  '/a/b/e',
  '/a/b/e.x',
  '/a/c/',
  '/a/c/q.x',
  '/a/c/q.y',
  '/a/z',
  '/a/zz.x',
  '/a/b/c/',
  '/a/b/c/q.x',
  '/a/b/c/e',
  '/a/b/c/d/q',
  '/a/b/c/d/q.x',
  '/a/exact',
  '/a/exact.x',
  '/s/q',
  '/s/q.x',
  '/s/q.y',
  '/s/t/q',
  '/s/t/q.x',
  '/s/t/q.y',
  '/p/',
  '/p/r.y',
  '/p/r.x',
  '/p/q/',
  '/p/q/r.y',
  '/p/q/r.x',
];

describe.skipIf(nginx === undefined)('nested locations: sluice chooses as a running nginx does', () => {
  let dir: string;
  let port: number;
  let proc: ChildProcess;
  const text = `http {\n  server {\n    listen 127.0.0.1:8080;\n${SERVER}\n  }\n}\n`;
  const imported = importNginx({ file: 'nested.conf', text });
  const loaded = loadConfigText(imported.yaml, 'sluice.yaml', {});
  if (!loaded.ok) throw new Error('the imported config does not load');
  const table = new RouteTable(loaded.config.servers[0]!.routes, (route) =>
    route.action.kind === 'respond' ? route.action.body : `(${route.action.kind})`,
  );
  const sluiceChoice = (path: string) => table.match(path, 'GET', { header: () => undefined }) ?? '(404)';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-nginx-nested-'));
    port = await freePort();
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((t) => `${t}_temp_path ${dir}/${t};`)
      .join(' ');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;\n` +
        `events {}\nhttp {\n  access_log off; ${temp}\n  server {\n    listen 127.0.0.1:${port};\n${SERVER}\n  }\n}\n`,
    );
    proc = spawn(nginx!, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await waitForPort(port);
  });

  afterAll(() => {
    if (proc?.exitCode === null) proc.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('imports with a warning for each location nginx never reaches, and none for the rest', () => {
    expect(imported.warnings.map((w) => [w.line, w.message])).toEqual([
      [
        19,
        expect.stringMatching(
          /^location \/a\/b\/c\/d\/ is never reached: nginx takes location \/a\/b\/c\/ \(line 22\)/,
        ),
      ],
      [
        20,
        expect.stringMatching(
          /^location = \/a\/b\/c\/e is never reached: nginx takes location \/a\/b\/c\/ \(line 22\)/,
        ),
      ],
    ]);
  });

  it.each(PATHS)('%s', async (path) => {
    const r = await http(`http://127.0.0.1:${port}${path}`);
    expect(sluiceChoice(path)).toBe(r.status === 200 ? r.body : `(${r.status})`);
  });
});
