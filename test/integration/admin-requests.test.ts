/**
 * The admin API of an in-process sluice, over real sockets: what it answers to requests a normal
 * client never sends, the order of its checks (who is asking before what is asked), and the audit
 * lines of refused changes. The role matrix through the built CLI is in test/e2e/admin-api.test.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';

const SECRETS = { viewer: 'viewer-secret-for-tests', operator: 'operator-secret-for-tests' };
const sha = (secret: string) => createHash('sha256').update(secret).digest('hex');
const TOKENS = [
  { name: 'grafana', role: 'viewer' as const, token_sha256: sha(SECRETS.viewer) },
  { name: 'ops', role: 'operator' as const, token_sha256: sha(SECRETS.operator) },
];

/** A request head, closing the connection after its answer. */
const head = (requestLine: string, ...fields: string[]) =>
  `${requestLine}\r\nHost: 127.0.0.1\r\n${fields.map((f) => `${f}\r\n`).join('')}Connection: close\r\n\r\n`;

/** The problem document of a raw answer. */
const problemOf = (text: string) =>
  JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

describe('admin API: malformed request targets', () => {
  let sluice: TestSluice;
  let admin: number;

  beforeAll(async () => {
    sluice = await startSluice({
      admin: { listen: '127.0.0.1:0', tokens: TOKENS },
      servers: [{ listen: '127.0.0.1:0', routes: [{ respond: { body: 'ok\n' } }] }],
    });
    admin = sluice.instance.addresses().admin!.port;
  });

  afterAll(async () => {
    await sluice.close();
  });

  it('answers a target the URL parser cannot read 400 as a problem, with a token or without', async () => {
    const targets = ['//[', 'http://[::1', '//x:99999/', '//@/'];
    for (const target of targets) {
      for (const fields of [[], [`Authorization: Bearer ${SECRETS.operator}`]]) {
        const r = await rawRequest(admin, head(`GET ${target} HTTP/1.1`, ...fields));
        expect(r.status, `${target} ${fields.length}`).toBe(400);
        expect(r.text).toContain('content-type: application/problem+json');
        expect(problemOf(r.text)).toMatchObject({ status: 400, title: 'Bad Request' });
      }
    }
  });

  it('still takes absolute-form targets', async () => {
    const bearer = `Authorization: Bearer ${SECRETS.viewer}`;
    const absolute = await rawRequest(
      admin,
      head(`GET http://127.0.0.1:${admin}/api/status HTTP/1.1`, bearer),
    );
    expect(absolute.status).toBe(200);
  });
});
