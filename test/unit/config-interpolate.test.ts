// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about the literal ${NAME} syntax.
import { describe, expect, it } from 'vitest';
import { expandEnv, interpolateEnv } from '../../src/config/interpolate.js';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { ProblemCollector } from '../../src/config/problem-collector.js';
import { parseTemplate } from '../../src/config/template.js';

const env = { HOST: '10.0.0.1', PORT: '8080', EMPTY: '', DOLLAR: '${PORT}' };

describe('expandEnv', () => {
  it.each([
    ['${HOST}', '10.0.0.1', true],
    ['${HOST}:${PORT}', '10.0.0.1:8080', false],
    ['http://${HOST}:${PORT}/x', 'http://10.0.0.1:8080/x', false],
    ['a${EMPTY}b', 'ab', false],
    ['no references', 'no references', false],
    ['$remote_addr and $$ and $', '$remote_addr and $$ and $', false],
    ['$${HOST} is literal', '${HOST} is literal', false],
    // Only `$${` escapes, read left to right: a lone `$` stays, then `$${` is a literal `${`.
    ['$$${HOST}', '$${HOST}', false],
    ['${DOLLAR}', '${PORT}', true],
  ])('%j → %j', (text, expected, whole) => {
    expect(expandEnv(text, env)).toEqual({ text: expected, missing: [], malformed: [], whole });
  });

  it("writes a value's $ as $$ in a $variable template, and only the value's", () => {
    expect(expandEnv('$host ${K} $$ $${K}', { K: 'pa$$w0rd$http_host' }, true).text).toBe(
      '$host pa$$$$w0rd$$http_host $$ ${K}',
    );
  });

  it('names each unset variable once and leaves its reference in place', () => {
    expect(expandEnv('${A}-${B}-${A}-${PORT}', env)).toEqual({
      text: '${A}-${B}-${A}-8080',
      missing: ['A', 'B'],
      malformed: [],
      whole: false,
    });
  });

  it.each([
    ['${}', ['${}']],
    ['x ${not-a-name} y', ['${not-a-name}']],
    ['${1ABC}', ['${1ABC}']],
    ['tail ${OPEN', ['${OPEN']],
  ])('reports %j as malformed', (text, malformed) => {
    expect(expandEnv(text, env).malformed).toEqual(malformed);
  });
});

describe('interpolateEnv', () => {
  it('expands strings everywhere, leaves keys and other scalars alone, and reports by path', () => {
    const problems = new ProblemCollector();
    const out = interpolateEnv(
      { '${HOST}': 1, list: ['${PORT}', 2, true, null], nested: { v: 'x${NOPE}' } },
      env,
      problems,
    );
    expect(out).toEqual({ '${HOST}': 1, list: ['8080', 2, true, null], nested: { v: 'x${NOPE}' } });
    expect(problems.problems).toEqual([
      {
        path: ['nested', 'v'],
        at: 'value',
        code: 'SLUICE_E_CONFIG_ENV',
        message: 'environment variable NOPE is not set',
        hint: 'export NOPE before starting sluice, or write $${NOPE} for a literal ${NOPE}',
      },
    ]);
  });

  it('types an unquoted whole reference like the value written in place, and keeps a quoted one a string', () => {
    const problems = new ProblemCollector();
    const plain = new Set(['a', 'b', 'c']);
    const out = interpolateEnv(
      { a: '${N}', b: '${T}', c: '${S}', d: '${N}', e: '${N}s' },
      { N: '8080', T: 'true', S: 'text' },
      problems,
      { isPlainScalar: (path) => plain.has(String(path[0])) },
    );
    expect(out).toEqual({ a: 8080, b: true, c: 'text', d: '8080', e: '8080s' });
  });

  it('types a quoted whole reference only where the key takes that type and not the text', () => {
    const problems = new ProblemCollector();
    const numbers = new Set(['n']);
    const out = interpolateEnv({ n: '${N}', s: '${N}', bad: '${T}' }, { N: '8080', T: 'text' }, problems, {
      accepts: (path, value) => (numbers.has(String(path[0])) ? typeof value === 'number' : true),
    });
    expect(out).toEqual({ n: 8080, s: '8080', bad: 'text' });
  });
});

describe('interpolation in YAML, inside { } and [ ]', () => {
  const env = { STATUS: '201', MAXC: '100', W: '2', ON: 'false', N: '42' };

  it('makes a quoted whole reference the number or boolean a key takes, and leaves text where text is taken', () => {
    const yaml = [
      'workers: "${W}"',
      'servers:',
      '  - listen: ["${MAXC}"]',
      '    limits: { max_connections: "${MAXC}" }',
      '    routes:',
      '      - match: { path: /a }',
      '        respond: { status: "${STATUS}", body: "${N}", headers: { X-N: "${N}" } }',
      '      - proxy: { url: "http://127.0.0.1:9001", preserve_host: "${ON}" }',
      '',
    ].join('\n');
    const result = loadConfigText(yaml, 's.yaml', env);
    if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
    const [server] = result.config.servers;
    expect(result.config.workers).toBe(2);
    expect(server!.limits.maxConnections).toBe(100);
    expect(server!.listen[0]!.port).toBe(100);
    expect(server!.routes[0]!.action).toMatchObject({ status: 201, body: '42', headers: [['X-N', '42']] });
    expect(server!.routes[1]!.action).toMatchObject({ preserveHost: false });
  });

  it('says to quote an unquoted reference, once, instead of a screenful of follow-on syntax errors', () => {
    const yaml = [
      'servers:',
      '  - listen: [80',
      '    routes:',
      '      - respond: { status: ${STATUS} }',
      '      - match: { path: /a }',
      '        respond: { headers: { X-A: x${N}y } }',
      '',
    ].join('\n');
    const result = loadConfigText(yaml, 's.yaml', env);
    const hint = (ref: string) =>
      `(hint: quote the whole value, e.g. "${ref}"; a quoted value that is only one \${NAME} still becomes a number or true/false where the key takes one)`;
    expect(result.ok ? [] : result.problems.map((p) => formatProblem(p))).toEqual([
      // An error before the first reference is its own.
      expect.stringMatching(/^s\.yaml:3:5: SLUICE_E_CONFIG_SYNTAX /),
      `s.yaml:4:28: SLUICE_E_CONFIG_SYNTAX \${STATUS} inside { } or [ ] must be quoted: unquoted, YAML reads its { as the start of a mapping ${hint('${STATUS}')}`,
      `s.yaml:6:37: SLUICE_E_CONFIG_SYNTAX \${N} inside { } or [ ] must be quoted: unquoted, YAML reads its { as the start of a mapping ${hint('${N}')}`,
    ]);
  });
});

describe('interpolation in YAML', () => {
  const text = (listen: string): string => `servers:\n  - listen: ${listen}\n    routes: [{ respond: {} }]\n`;

  it('makes an unquoted ${PORT} a port number and a quoted one a port string; both listen', () => {
    for (const listen of ['${PORT}', '"${PORT}"', '":${PORT}"', '"${HOST}:${PORT}"']) {
      const result = loadConfigText(text(listen), 's.yaml', env);
      expect(result.ok && result.config.servers[0]?.listen[0]?.port).toBe(8080);
    }
  });

  it('takes a value verbatim in every $variable template, and as it is in other strings', () => {
    const yaml = [
      'servers:',
      '  - listen: 80',
      '    rate_limit: { rate: 10/s, key: "${KEY}" }',
      '    routes:',
      '      - match: { path: /r }',
      '        redirect: { to: "https://example.com/${KEY}" }',
      '      - match: { path: /s }',
      '        respond: { body: "${KEY}", headers: { X-Plain: "${KEY}" } }',
      '      - proxy:',
      '          upstream: be',
      '          set_headers: { X-Api-Key: "${KEY}" }',
      '          response_headers: { set: { X-Out: "${KEY}" } }',
      'upstreams:',
      '  be: { balance: hash, hash_key: "${KEY}", targets: [{ url: "http://127.0.0.1:9001" }] }',
      '',
    ].join('\n');
    // abc$def was refused as "unknown variable $def", showing part of the secret.
    const key = 'k3y$http_host pa$$w0rd $1 abc$def';
    const result = loadConfigText(yaml, 's.yaml', { KEY: key });
    if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
    const [server] = result.config.servers;
    const [redirect, respond, proxy] = server!.routes.map((r) => r.action);
    const templates = [
      server!.routes[0]!.guards.rateLimit!.key,
      redirect?.kind === 'redirect' ? redirect.to : '',
      proxy?.kind === 'proxy' ? proxy.setHeaders[0]![1] : '',
      proxy?.kind === 'proxy' ? proxy.responseSetHeaders[0]![1] : '',
      result.config.upstreams.be!.hashKey!,
    ];
    expect(templates.map((t) => parseTemplate(t))).toEqual([
      { parts: [key] },
      { parts: [`https://example.com/${key}`] },
      { parts: [key] },
      { parts: [key] },
      { parts: [key] },
    ]);
    expect(respond?.kind === 'respond' && [respond.body, respond.headers[0]![1]]).toEqual([key, key]);
  });

  it('reports an unset variable at its scalar and nothing else about that value', () => {
    const result = loadConfigText(text('${NOPE}'), 's.yaml', {});
    expect(result.ok ? [] : result.problems.map((p) => [p.line, p.col, p.code, p.message])).toEqual([
      [2, 13, 'SLUICE_E_CONFIG_ENV', 'servers[0].listen: environment variable NOPE is not set'],
    ]);
  });

  it('uses process.env when no environment is given', () => {
    process.env.SLUICE_TEST_INTERPOLATE = '9099';
    try {
      const result = loadConfigText(text('${SLUICE_TEST_INTERPOLATE}'), 's.yaml');
      expect(result.ok && result.config.servers[0]?.listen[0]?.port).toBe(9099);
    } finally {
      delete process.env.SLUICE_TEST_INTERPOLATE;
    }
  });
});
