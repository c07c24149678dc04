import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';

// Set anyway, these broke the exchange: undici refused the request (a 502 counted against every
// target), or a response went out with both a Content-Length and Transfer-Encoding: chunked.
describe('headers sluice manages itself', () => {
  it('are left out of set_headers, response_headers and respond headers, each with a warning', () => {
    const r = loadConfigText(
      `servers:
  - listen: ":8080"
    routes:
      - match: { path_prefix: /ws }
        proxy:
          url: http://127.0.0.1:3000
          set_headers: { Upgrade: $http_upgrade, Connection: upgrade, X-Kept: a, Content-Length: "1" }
          response_headers: { set: { Transfer-Encoding: chunked, X-Also: b }, add: { Keep-Alive: "timeout=5" } }
      - respond: { body: x, headers: { Content-Length: "5", X-Frame-Options: DENY } }
`,
      'sluice.yaml',
      {},
    );
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
    expect(r.warnings.map((w) => `${w.line}: ${w.message}`)).toEqual([
      '7: servers[0].routes[0].proxy.set_headers: Upgrade is left out: sluice sets it itself',
      '7: servers[0].routes[0].proxy.set_headers: Connection is left out: sluice sets it itself',
      '7: servers[0].routes[0].proxy.set_headers: Content-Length is left out: sluice sets it itself',
      '8: servers[0].routes[0].proxy.response_headers.set: Transfer-Encoding is left out: sluice sets it itself',
      '8: servers[0].routes[0].proxy.response_headers.add: Keep-Alive is left out: sluice sets it itself',
      '9: servers[0].routes[1].respond.headers: Content-Length is left out: sluice sets it itself',
    ]);
    const [proxy, respond] = r.config.servers[0]!.routes.map((route) => route.action);
    if (proxy?.kind !== 'proxy' || respond?.kind !== 'respond') throw new Error('unexpected actions');
    expect(proxy.setHeaders).toEqual([['X-Kept', 'a']]);
    expect(proxy.responseSetHeaders).toEqual([['X-Also', 'b']]);
    expect(proxy.responseAddHeaders).toEqual([]);
    expect(respond.headers).toEqual([['X-Frame-Options', 'DENY']]);
  });
});

// Node's parser answers 400 to a method outside its list before sluice sees the request.
describe('a route method Node cannot parse', () => {
  it('is a warning; TRACE, answered 405 first, too', () => {
    const r = loadConfigText(
      `servers:
  - listen: ":8080"
    routes:
      - match: { path_prefix: /, methods: [BREW, purge, GET, trace] }
        respond: { body: teapot }
`,
      'sluice.yaml',
      {},
    );
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
    expect(r.warnings.map((w) => `${w.line}:${w.col}: ${w.message}`)).toEqual([
      "4:44: servers[0].routes[0].match.methods[0]: BREW reaches this route over HTTP/2 only: Node's HTTP/1 parser refuses methods outside its list with 400",
      '4:62: servers[0].routes[0].match.methods[3]: TRACE never reaches a route',
    ]);
  });
});
