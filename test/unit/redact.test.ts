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
    // Not a URL (a typo): whatever precedes the @ goes.
    ['redis//:pw-1a2b@127.0.0.1:6379/0', 'redis//redacted@127.0.0.1:6379/0'],
    // Nothing secret: the text as written, not as the URL parser would write it.
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['HTTP://Example.COM:80/a/../b', 'HTTP://Example.COM:80/a/../b'],
    // Text that only mentions a URL (a respond body) is no URL.
    [
      'Mail ops@example.com, status at https://status.example.com',
      'Mail ops@example.com, status at https://status.example.com',
    ],
  ])('%s → %s', (text, shown) => {
    expect(redactUrl(text)).toBe(shown);
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

  it('keeps passwords out of the problems of a config that is refused', () => {
    const bad = loadConfigText(
      `state: { redis: "redis//:redis-secret-3b2a@127.0.0.1:6379/0" }
tracing: { otlp_endpoint: "ftp://u:otlp-secret-1a0b@x/" }
servers:
  - listen: 127.0.0.1:8080
    routes: [{ proxy: { url: "http://u:target-secret-4e3d@127.0.0.1:9001" } }]
`,
      '/etc/sluice/sluice.yaml',
      {},
    );
    expect(bad.ok).toBe(false);
    const text = bad.ok ? '' : bad.problems.map((p) => formatProblem(p)).join('\n');
    expect(text).toContain('SLUICE_E_CONFIG_URL');
    for (const secret of ['redis-secret-3b2a', 'otlp-secret-1a0b', 'target-secret-4e3d']) {
      expect(text).not.toContain(secret);
    }
  });
});
