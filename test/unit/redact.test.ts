// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config uses ${NAME} interpolation.
import { describe, expect, it } from 'vitest';
import { redactConfig } from '../../src/admin/redact-config.js';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { redactUrl } from '../../src/core/redact.js';

describe('redactUrl', () => {
  it.each([
    ['redis://:pw-1a2b@127.0.0.1:6379/0', 'redis://:redacted@127.0.0.1:6379/0'],
    ['redis://user:pw-1a2b@127.0.0.1:6379/0', 'redis://user:redacted@127.0.0.1:6379/0'],
    ['redis://127.0.0.1:6379/0?password=pw-1a2b&db=1', 'redis://127.0.0.1:6379/0?password=redacted&db=1'],
    ['http://collector:4318/v1/traces?api_key=k-9f8e', 'http://collector:4318/v1/traces?api_key=redacted'],
    ['http://c:4318/v1/traces?pass%77ord=k-9f8e&x=1', 'http://c:4318/v1/traces?pass%77ord=redacted&x=1'],
    // A user name alone may be a token: all of it goes.
    ['https://tok-9f8e@example.com/v1/traces', 'https://redacted@example.com/v1/traces'],
    // Not a URL (a typo): whatever precedes the @ goes.
    ['redis//:pw-1a2b@127.0.0.1:6379/0', 'redis//:redacted@127.0.0.1:6379/0'],
    // Nothing secret: the text as written, not as the URL parser would write it.
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['HTTP://Example.COM:80/a/../b', 'HTTP://Example.COM:80/a/../b'],
    ['redis://@127.0.0.1:6379/0', 'redis://@127.0.0.1:6379/0'],
    // Text that only mentions a URL (a respond body) is no URL.
    [
      'Mail ops@example.com, status at https://status.example.com',
      'Mail ops@example.com, status at https://status.example.com',
    ],
    ['Note: ops@example.com', 'Note: ops@example.com'],
    ['^/(?:u|user)@(.+)$', '^/(?:u|user)@(.+)$'],
  ])('%s → %s', (text, shown) => {
    expect(redactUrl(text)).toBe(shown);
  });

  // The userinfo ends at the last @, whatever the password holds: none of it is shown.
  it.each([
    ['redis://:Leak+Pw/10=@host/0', 'redis://:redacted@host/0'],
    ['http://user:Otlp/Leak@collector:4318', 'http://user:redacted@collector:4318'],
    ['http://user:Otlp/Leak@collector:4318/v1/traces', 'http://user:redacted@collector:4318/v1/traces'],
    // Parses, as host `user`, port 123 and path /Leak@host/0.
    ['redis://user:123/Leak@host/0', 'redis://user:redacted@host/0'],
    ['redis://:Le@k@host/0', 'redis://:redacted@host/0'],
    ['redis://:Le?ak#x@host/0?password=Leak2&db=1', 'redis://:redacted@host/0?password=redacted&db=1'],
    ['redis://:50%Leak@127.0.0.1:6379/0', 'redis://:redacted@127.0.0.1:6379/0'],
    ['redis://:Leak pw@host/0', 'redis://:redacted@host/0'],
    ['redis:\\\\:Leak\\pw@host', 'redis:\\\\:redacted@host'],
    // Typos of the scheme: no user name is kept, what precedes the @ may be the password.
    ['redis:/:Leak@host', 'redis:/redacted@host'],
    ['redis:Leak@host', 'redis:redacted@host'],
    ['redis:user:Le:ak@host', 'redis:redacted@host'],
    ['//:Leak@host', '//:redacted@host'],
    // No scheme at all.
    ['user:Leak@host', 'user:redacted@host'],
    [':Leak@host:6379', 'redacted@host:6379'],
    ['http:user:Leak@collector:4318/v1/traces', 'http:redacted@collector:4318/v1/traces'],
    // A query before the last @: its pairs after it are still read.
    ['http://h:1/p?email=a@b&token=Leak', 'http://h:redacted@b&token=redacted'],
    // The last @ is one of a secret query value's: the value is hidden to its end.
    ['redis://127.0.0.1:6379/0?password=hunter@2Leak', 'redis://127.0.0.1:redacted'],
    ['http://h/cb?token=abc@LeakTail&x=1', 'http://redacted&x=1'],
    ['redis://:Le?password=x@Leak&db=1', 'redis://:redacted&db=1'],
    // White space and controls before the URL, which URL parsers skip.
    [' redis://u:Leak@h:6379/0', ' redis://u:redacted@h:6379/0'],
    ['\t\nhttp://u:Leak@collector:4318/v1/traces', '\t\nhttp://u:redacted@collector:4318/v1/traces'],
    ['\uFEFFredis://:Leak@h/0', '\uFEFFredis://:redacted@h/0'],
    [' user:Leak@host', ' user:redacted@host'],
  ])('%s → %s', (text, shown) => {
    expect(redactUrl(text)).toBe(shown);
    expect(redactUrl(text)).not.toMatch(/Leak/);
  });
});

describe('redactConfig (GET /api/config)', () => {
  const env = { UPSTREAM_SECRET: 'upstream-secret-5c4d', API_KEY: 'api-key-7e6f' };
  const yaml = `state: { redis: "redis://127.0.0.1:6379/0?password=redis-secret-3b2a" }
tracing: { otlp_endpoint: "http://otlp:otlp-secret-1a0b@127.0.0.1:4318/v1/traces" }
admin:
  listen: 127.0.0.1:9090
  tokens: [{ name: ops, role: operator, token_sha256: "${'a'.repeat(64)}" }]
servers:
  - listen: 127.0.0.1:8080
    routes:
      - match: { path_prefix: /internal/, headers: { x-api-key: "\${API_KEY}", x-canary: "1" } }
        proxy:
          url: http://127.0.0.1:9001
          set_headers: { Authorization: "Bearer \${UPSTREAM_SECRET}", X-Tenant: acme }
          response_headers: { set: { Set-Cookie: "sid=cookie-secret-9d8c" } }
      - respond: { body: "ok\\n", headers: { X-Auth-Token: "respond-secret-2f1e", X-Note: plain } }
`;

  it('hides every secret and keeps the rest', () => {
    const result = loadConfigText(yaml, '/etc/sluice/sluice.yaml', env);
    if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
    const shown = JSON.stringify(redactConfig(result.config));
    for (const secret of [
      'redis-secret-3b2a',
      'otlp-secret-1a0b',
      'a'.repeat(64),
      'upstream-secret-5c4d',
      'api-key-7e6f',
      'cookie-secret-9d8c',
      'respond-secret-2f1e',
    ]) {
      expect(shown).not.toContain(secret);
    }
    for (const kept of [
      'X-Tenant","acme',
      'x-canary',
      '"value":"1"',
      'X-Note","plain',
      'http://127.0.0.1:9001',
    ]) {
      expect(shown).toContain(kept);
    }
    expect(shown).toContain('"Authorization","[redacted]"');
  });

  it('hides the password of a URL written without // (the OTLP exporter takes http:user:pw@host)', () => {
    const result = loadConfigText(
      `tracing: { otlp_endpoint: "http:otlp:otlp-secret-1a0b@127.0.0.1:4318/v1/traces" }
servers: [{ listen: 127.0.0.1:8080, routes: [{ respond: { body: "ok" } }] }]
`,
      '/etc/sluice/sluice.yaml',
      {},
    );
    if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
    const shown = JSON.stringify(redactConfig(result.config));
    expect(shown).not.toContain('otlp-secret-1a0b');
    expect(shown).toContain('http:redacted@127.0.0.1:4318/v1/traces');
  });

  it.each([
    [
      'typos and other schemes',
      'redis//:redis-secret-3b2a@127.0.0.1:6379/0',
      'ftp://u:otlp-secret-1a0b@x/',
      'http://u:target-secret-4e3d@127.0.0.1:9001',
    ],
    [
      'a / in the password',
      'redis://:redis/secret-3b2a@127.0.0.1:6379/0',
      'http://u:otlp/secret-1a0b@127.0.0.1:4318/v1/traces',
      'http://u:9001/target-secret-4e3d@127.0.0.1:9001',
    ],
    [
      'no // after the scheme, or no scheme',
      'redis:/:redis-secret-3b2a@127.0.0.1:6379/0',
      'otlp:otlp-secret-1a0b@127.0.0.1:4318',
      'u:target-secret-4e3d@127.0.0.1:9001',
    ],
    [
      'a % that starts no escape',
      'redis://:redis%secret-3b2a@127.0.0.1:6379/0',
      'http://u:otlp%secret-1a0b@127.0.0.1:4318/v1/traces',
      'redis:target-secret-4e3d@127.0.0.1:9001',
    ],
  ])('keeps passwords out of the problems of a config that is refused: %s', (_, redis, otlp, proxy) => {
    const bad = loadConfigText(
      `state: { redis: "${redis}" }
tracing: { otlp_endpoint: "${otlp}" }
servers:
  - listen: 127.0.0.1:8080
    routes: [{ proxy: { url: "${proxy}" } }]
`,
      '/etc/sluice/sluice.yaml',
      {},
    );
    expect(bad.ok).toBe(false);
    const problems = bad.ok ? [] : bad.problems;
    expect(problems.map((p) => `${p.line}:${p.col} ${p.code}`)).toEqual([
      '1:17 SLUICE_E_CONFIG_URL',
      '2:27 SLUICE_E_CONFIG_URL',
      '5:30 SLUICE_E_CONFIG_URL',
    ]);
    const text = problems.map((p) => formatProblem(p)).join('\n');
    for (const secret of ['secret-3b2a', 'secret-1a0b', 'secret-4e3d']) {
      expect(text).not.toContain(secret);
    }
  });
});
