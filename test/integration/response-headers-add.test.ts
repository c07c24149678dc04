/**
 * `proxy.response_headers.add` and `add_always` (nginx's `add_header`, without and with
 * `always`): headers added beside the target's own, `add` on success and redirect answers only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { http } from '../helpers/http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('response_headers.add and add_always', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    // Answers with the status its path names, and a header sluice adds to as well.
    up = await startUpstream((req, res) => {
      const status = Number(req.url?.slice(1)) || 200;
      res.writeHead(status, { 'x-tag': 'upstream', 'content-length': '0', location: '/' });
      res.end();
    });
    sluice = await startSluice({
      servers: [
        {
          name: 'web',
          listen: '127.0.0.1:0',
          routes: [
            {
              proxy: {
                url: up.url,
                response_headers: {
                  add: { 'X-Tag': 'sluice', 'X-Host': '$host', 'X-Empty': '$http_x_none' },
                  add_always: { 'Strict-Transport-Security': 'max-age=60' },
                },
              },
            },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await up?.close();
  });

  const get = (status: number) => http(`${sluice.url}/${status}`, { headers: { host: 'a.test' } });

  it.each([200, 201, 204, 206, 301, 302, 303, 304, 307, 308])(
    "adds both kinds beside the target's own header on a %i",
    async (status) => {
      const r = await get(status);
      expect(r.status).toBe(status);
      // Both sent, the target's first (the test client keeps repeated headers apart).
      expect(r.headers['x-tag']).toEqual(['upstream', 'sluice']);
      expect(r.headers['x-host']).toBe('a.test');
      expect(r.headers['strict-transport-security']).toBe('max-age=60');
      // nginx sends no header added with an empty value.
      expect(r.headers['x-empty']).toBeUndefined();
    },
  );

  it.each([202, 400, 404, 500, 503])('adds only add_always on a %i', async (status) => {
    const r = await get(status);
    expect(r.status).toBe(status);
    expect(r.headers['x-tag']).toBe('upstream');
    expect(r.headers['x-host']).toBeUndefined();
    expect(r.headers['strict-transport-security']).toBe('max-age=60');
  });

  it('refuses a header name that is not a token, and the same name twice', () => {
    const r = loadConfigText(
      [
        'servers:',
        '  - listen: 127.0.0.1:8080',
        '    routes:',
        '      - proxy:',
        '          url: http://127.0.0.1:9000',
        '          response_headers:',
        '            add: { "Bad Name": x, X-A: "1", x-a: "2" }',
        '            add_always: { "X:Y": z }',
      ].join('\n'),
      'sluice.yaml',
      {},
    );
    expect(r.ok).toBe(false);
    const problems = r.ok ? [] : r.problems.map((p) => formatProblem(p));
    expect(problems).toEqual([
      expect.stringMatching(
        /^sluice\.yaml:7:20: SLUICE_E_CONFIG_VALUE .*response_headers\.add: "Bad Name" is not a valid header name/,
      ),
      expect.stringMatching(
        /^sluice\.yaml:7:45: SLUICE_E_CONFIG_DUPLICATE_NAME .*response_headers\.add: header "x-a" is also set as "X-A"/,
      ),
      expect.stringMatching(
        /^sluice\.yaml:8:27: SLUICE_E_CONFIG_VALUE .*response_headers\.add_always: "X:Y" is not a valid header name/,
      ),
    ]);
  });
});
