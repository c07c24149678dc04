/**
 * nginx matches locations against the decoded path, sluice against the normalised one (escapes
 * kept, docs/config.md): imported locations must still choose the same location for every way a
 * client can spell a path. Each case below is a server of a real nginx on a loopback port and the
 * same server imported and asked through sluice's real router, path normalisation included; every
 * path goes to the same location in both, raw non-ASCII bytes (which sluice gets over HTTP/2) too.
 * Skipped when nginx is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { encodePath, pathSource } from '../../src/ops/import-nginx/encoded-path.js';
import { importNginx } from '../../src/ops/import-nginx/import-nginx.js';
import { translatePathRegex } from '../../src/ops/import-nginx/path-regex.js';
import { normalisePath, routePathOf } from '../../src/router/normalise-path.js';
import { RouteTable } from '../../src/router/route-table.js';
import { freePort, waitForPort } from '../helpers/cli.js';
import { rawRequest } from '../helpers/raw-http.js';

const nginx = ['/usr/sbin/nginx', 'nginx'].find((bin) => spawnSync(bin, ['-v']).status === 0);

/** Each case is one server: its locations, each answering its index. */
const CASES: readonly (readonly string[])[] = [
  ['/café/'],
  ['/a%20b/'],
  ['"/sp ace/"'],
  ['/@x/', '~ y$'],
  ['= /=y'],
  ['^~ /u:', '~ \\d$'],
  ['~ ^/naïve'],
  ['~ ^/na.ve$'],
  ['~ ^/n2..ve$'],
  ['~ \\.php$'],
  ['~* \\.php$'],
  ['~ "^/sp ace"'],
  ['~ ^/tab\\s'],
  ['~ ^/tab\\S'],
  ['~ ^/ex!c'],
  ['~ ^/[[:alpha:]]+9$'],
  ['~ ^/[[:alpha:]]+9\\z'],
  ['~ ^/[[:^alpha:]]'],
  ['~ ^/B\\bx'],
  ['~ \\bBx'],
  ['~ x\\B'],
  ['~ ^/a[^/]b'],
  ['~ ^/(?>a|ab)c'],
  ['~ ^/a++b'],
  ['~ ^/\\Qa.b\\E$'],
  ['~ ^/é+$'],
  ['~ ^/[é]+$'],
  ['~ ^/\\x41'],
  ['~ (?i)^/ab'],
  ['~ ^/(?i:ab)c'],
  ['~ ^/u:\\d'],
  ['~ ^/[:@]x'],
  ['~ A'],
  ['~ %'],
  ['~ ^/x\\ny'],
  ['~ ^/x.y$'],
  ['~ (?s)^/x.y$'],
  ['~ (?m)^y$'],
  ['~ ^/\\w+$'],
  ['~ ^/\\W'],
  ['~ ^/\\Aa'],
  ['~ (?<=%)b'],
  ['~ ^/(?<!x)y'],
  ['~ "^/[a-c]{2,3}$"'],
  ['~ ^/q\\?'],
  ['~ ^/a\\Z'],
  ['~ ^/a\\Kb'],
  ['~ ^/x\\Ry$'],
];

/** Paths as a client sends them. */
const PATHS = [
  '/',
  '/caf%C3%A9/x',
  '/caf%c3%a9/x',
  '/caf%C3%A9x',
  // Raw non-ASCII bytes: nginx takes them over HTTP/1.1, sluice over HTTP/2 (as one character each).
  '/caf\xC3\xA9/x',
  '/na\xC3\xAFve',
  '/\xC3\xA9\xC3\xA9',
  '/caf\xC3%A9/x',
  '/a%20b/',
  '/a%2520b/',
  '/sp%20ace/x',
  '/@x/y',
  '/%40x/y',
  '/%40x/z',
  '/=y',
  '/%3Dy',
  '/%3dy',
  '/u:1',
  '/u%3A1',
  '/u%3a',
  '/na%C3%AFve',
  '/nave',
  '/naxve',
  '/n2%C3%AFve',
  '/index.php',
  '/index.PHP',
  '/index.php%0A',
  '/index.php%0a',
  '/index.php%0A%0A',
  '/index.php%20',
  '/x.php/y',
  '/tab%09x',
  '/tab%0Bx',
  '/tab%20x',
  '/tabx',
  '/ex!c',
  '/ex%21c',
  '/abc9',
  '/ab%3A9',
  '/abc9%0A',
  '/B%20x',
  '/Bx',
  '/B_x',
  '/%3ABx',
  '/a%2Fb',
  '/axb',
  '/ac',
  '/abc',
  '/aab',
  '/a.b',
  '/a%2Eb',
  '/axb%0A',
  '/%C3%A9%C3%A9',
  '/%C3%A9%A9',
  '/A',
  '/%41b',
  '/%3A',
  '/Ab',
  '/aBc',
  '/p%25',
  '/x%0Ay',
  '/xzy',
  '/y%0Ay',
  '/%7Euser',
  '/q%3Fx',
  '/a%0A',
  '/abbc',
  '/x%0D%0Ay',
  '/x%0D%0A%0Ay',
  '/x%0Dy',
  '/x%85y',
];

describe.skipIf(nginx === undefined)('escaped paths: sluice chooses as a running nginx does', () => {
  let dir: string;
  let port: number;
  let proc: ChildProcess;
  const servers = CASES.map(
    (locations, i) =>
      `  server {\n    listen 127.0.0.1:PORT;\n    server_name s${i}.test;\n` +
      `    location / { return 200 "none"; }\n` +
      locations.map((l, k) => `    location ${l} { return 200 "${k}"; }\n`).join('') +
      '  }\n',
  );
  const imported = importNginx({
    file: 'paths.conf',
    text: `http {\n${servers.join('').replaceAll('PORT', '8080')}}\n`,
  });
  const loaded = loadConfigText(imported.yaml, 'sluice.yaml', {});
  if (!loaded.ok) throw new Error(`the imported config does not load:\n${imported.yaml}`);
  const tables = new Map(
    loaded.config.servers.map((s) => [
      s.name,
      new RouteTable(s.routes, (route) =>
        route.action.kind === 'respond' ? route.action.body : `(${route.action.kind})`,
      ),
    ]),
  );

  /** sluice's choice, with the path normalised as the gateway does before routing. */
  const sluiceChoice = (server: number, sent: string): string => {
    const path = normalisePath(sent);
    if (path === null) return '(400)';
    // As the gateway reads it (gateway.ts).
    const routePath = routePathOf(path);
    if (routePath === null) return '(400)';
    const table = tables.get(`s${server}.test`);
    return table?.match(routePath, 'GET', { header: () => undefined }) ?? '(404)';
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-nginx-paths-'));
    port = await freePort();
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((t) => `${t}_temp_path ${dir}/${t};`)
      .join(' ');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;\n` +
        `events {}\nhttp {\n  access_log off; ${temp}\n${servers.join('').replaceAll('PORT', String(port))}}\n`,
    );
    proc = spawn(nginx!, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await waitForPort(port);
  });

  afterAll(() => {
    if (proc?.exitCode === null) proc.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('imports every case without a warning', () => {
    expect(imported.warnings.map((w) => `${w.line}: ${w.message}`)).toEqual([]);
  });

  it.each(CASES.map((c, i) => [c.join(' | '), i] as const))('%s', async (_, i) => {
    const differ: string[] = [];
    for (const path of PATHS) {
      const r = await rawRequest(
        port,
        `GET ${path} HTTP/1.1\r\nHost: s${i}.test\r\nConnection: close\r\n\r\n`,
      );
      const answer = r.status === 200 ? r.text.slice(r.text.indexOf('\r\n\r\n') + 4) : `(${r.status})`;
      // nginx refuses some paths sluice refuses too (400): both refuse.
      const mine = sluiceChoice(i, path);
      if (answer !== mine && !(r.status === 400 && mine === '(400)'))
        differ.push(`${path}: nginx ${answer}, sluice ${mine}`);
    }
    expect(differ).toEqual([]);
  });
});

describe('the spellings of a decoded path', () => {
  it('writes a location as sluice normalises paths: unreserved bytes raw, others upper-case %XX', () => {
    expect(encodePath('/café/')).toEqual({ path: '/caf%C3%A9/', ambiguous: true });
    expect(encodePath('/a%20b/')).toEqual({ path: '/a%2520b/', ambiguous: false });
    expect(encodePath('/sp ace/')).toEqual({ path: '/sp%20ace/', ambiguous: false });
    expect(encodePath('/q?x#y')).toEqual({ path: '/q%3Fx%23y', ambiguous: true });
    // Routes see `%40` as `@` (routePathOf): one spelling.
    expect(encodePath('/@x/')).toEqual({ path: '/@x/', ambiguous: false });
    expect(pathSource('/@x.')).toBe('/@x\\.');
    expect(encodePath('/[x/')).toEqual({ path: '/[x/', ambiguous: true });
    expect(pathSource('/[x')).toBe('/(?:\\[|%5B)x');
    expect(pathSource('/é')).toBe('/(?:\\xC3|%C3)(?:\\xA9|%A9)');
  });

  it('translates a regex byte by byte, and refuses what has no exact equivalent', () => {
    expect(translatePathRegex('\\.php$', false)).toEqual({ source: '(?<!%[0-9A-F]?)\\.php(?:%0A)?$' });
    expect(translatePathRegex('^/naïve', false)).toEqual({ source: '^/na(?:\\xC3|%C3)(?:\\xAF|%AF)ve' });
    expect(translatePathRegex('^/tab\\s', false)).toEqual({ source: '^/tab%(?:0[9-D]|20)' });
    expect(translatePathRegex('^/x.', false)).toEqual({ source: '^/x(?:[^%]|%(?!0A)[0-9A-F]{2})' });
    for (const refused of ['^/(a)\\1', '\\p{L}', '(?x) a', '(?(1)a|b)', '(*SKIP)a', '(?R)']) {
      expect(translatePathRegex(refused, false), refused).toEqual({ error: expect.any(String) });
    }
  });
});

describe('a location path a client may escape otherwise', () => {
  it('gets a regex route for every spelling, and says that strip_prefix takes one of them', () => {
    const r = importNginx({
      file: 'n.conf',
      text: 'http { server { listen 80; location /[x]/ { proxy_pass http://10.0.0.5:8080/v1/; proxy_redirect off; } } }',
    });
    const routes = r.config.servers[0]!.routes;
    expect(routes.map((x) => [x.name, x.match])).toEqual([
      // nginx's slash redirect for /[x], exact: before every regex.
      ['= /[x] (escaped)', { path_regex: '^/(?:\\[|%5B)x(?:\\]|%5D)$' }],
      [undefined, { path: '/[x]' }],
      [undefined, { path_prefix: '/[x]/' }],
      ['/[x]/ (escaped)', { path_regex: '^/(?:\\[|%5B)x(?:\\]|%5D)/' }],
    ]);
    expect(loadConfigText(r.yaml, 'sluice.yaml', {}).ok).toBe(true);
    expect(r.warnings.map((w) => w.message)).toEqual([
      'location /[x]/: a request that escapes its path otherwise (/(?:\\[|%5B)x(?:\\]|%5D)/) reaches this location as in nginx, but sluice forwards it with the prefix kept (strip_prefix /[x] matches one spelling)',
    ]);
  });

  it('needs no second route for a path character, whose escape routes see decoded (/%40x/ is /@x/)', () => {
    const r = importNginx({
      file: 'n.conf',
      text: 'http { server { listen 80; location /@x/ { proxy_pass http://10.0.0.5:8080/v1/; proxy_redirect off; } } }',
    });
    expect(r.config.servers[0]!.routes.map((x) => [x.name, x.match])).toEqual([
      [undefined, { path: '/@x' }],
      [undefined, { path_prefix: '/@x/' }],
    ]);
    expect(r.warnings).toEqual([]);
  });
});
