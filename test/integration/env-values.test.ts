// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about the literal ${NAME} syntax.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { SluiceInstance } from '../../src/runtime/instance.js';
import { http } from '../helpers/http.js';
import { memoryLoggers } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/**
 * Secrets with a `$` in them: a doubled one, ones before request variables (the client's Host was
 * put in), one before a digit. One before any other word was refused as an unknown variable
 * (config-interpolate.test.ts).
 */
const SECRETS = ['pa$$w0rd', 'k3y$http_host', 'abc$1', 'x$remote_addr'];

describe('${NAME} values in $variable templates', () => {
  let up: TestUpstream;
  let sluice: SluiceInstance;
  let base: string;

  beforeAll(async () => {
    up = await startUpstream();
    const routes = SECRETS.flatMap((_, i) => [
      `      - match: { path: /to/${i} }`,
      `        redirect: { to: "https://example.com/\${S${i}}" }`,
      `      - match: { path: /p/${i} }`,
      '        proxy:',
      `          url: "${up.url}"`,
      `          set_headers: { X-Api-Key: "\${S${i}}" }`,
      `          response_headers: { set: { X-Back: "k=\${S${i}}" } }`,
    ]);
    const yaml = ['servers:', '  - listen: "127.0.0.1:0"', '    routes:', ...routes, ''].join('\n');
    const env = Object.fromEntries(SECRETS.map((s, i) => [`S${i}`, s]));
    const result = loadConfigText(yaml, 'sluice.yaml', env);
    if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
    sluice = new SluiceInstance(result.config, { loggers: memoryLoggers().loggers });
    await sluice.start();
    base = `http://127.0.0.1:${sluice.addresses().servers[0]!.port}`;
  });

  afterAll(async () => {
    await sluice?.close(1000);
    await up?.close();
  });

  it.each(SECRETS.map((s, i) => [s, i]))(
    'send secret %# upstream and back exactly as set',
    async (secret, i) => {
      const res = await http(`${base}/p/${i}`, { headers: { host: 'victim.example' } });
      expect(res.status).toBe(200);
      expect((res.json() as { headers: Record<string, string> }).headers['x-api-key']).toBe(secret);
      expect(res.headers['x-back']).toBe(`k=${secret}`);
    },
  );

  it.each(SECRETS.map((s, i) => [s, i]))(
    'redirect to a target with secret %# as written',
    async (secret, i) => {
      const res = await http(`${base}/to/${i}`);
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`https://example.com/${secret}`);
    },
  );
});
