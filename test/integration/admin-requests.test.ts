/**
 * The admin API of an in-process sluice, over real sockets: what it answers to requests a normal
 * client never sends, the order of its checks (who is asking before what is asked), and the audit
 * lines of refused changes. The role matrix through the built CLI is in test/e2e/admin-api.test.ts.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { freePort } from '../helpers/cli.js';
import { http } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { resolve, startSluice, type TestSluice } from '../helpers/sluice.js';

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

describe('admin API: who is asking, before what is asked', () => {
  let sluice: TestSluice;
  let open: TestSluice;
  const portOf = (s: TestSluice) => s.instance.addresses().admin!.port;
  const audits = (s: TestSluice) => s.logs.filter((l) => l.audit === true && l.msg === 'admin action');

  beforeAll(async () => {
    const servers = [{ listen: '127.0.0.1:0', routes: [{ respond: { body: 'ok\n' } }] }];
    sluice = await startSluice({ admin: { listen: '127.0.0.1:0', tokens: TOKENS }, servers });
    open = await startSluice({ admin: { listen: '127.0.0.1:0' }, servers });
  });

  afterAll(async () => {
    await sluice.close();
    await open.close();
  });

  it('answers a malformed parameter of a change 401 without a token, 403 to a viewer, 400 to an operator, each audited', async () => {
    const changes = [
      { line: 'DELETE /api/bans/%E0 HTTP/1.1', action: 'unban', where: { address: '%E0' } },
      {
        line: 'POST /api/upstreams/%E0/targets/0/drain HTTP/1.1',
        action: 'target.drain',
        where: { upstream: '%E0', index: '0' },
      },
    ];
    const callers = [
      { fields: [], status: 401, token_name: null, outcome: 'unauthenticated' },
      {
        fields: ['Authorization: Bearer not-a-token-of-ours'],
        status: 401,
        token_name: null,
        outcome: 'unauthenticated',
      },
      {
        fields: [`Authorization: Bearer ${SECRETS.viewer}`],
        status: 403,
        token_name: 'grafana',
        outcome: 'forbidden',
      },
      {
        fields: [`Authorization: Bearer ${SECRETS.operator}`],
        status: 400,
        token_name: 'ops',
        outcome: 'bad-request',
      },
    ];
    for (const change of changes) {
      for (const caller of callers) {
        const before = audits(sluice).length;
        const r = await rawRequest(portOf(sluice), head(change.line, ...caller.fields));
        expect(r.status, `${change.line} ${caller.outcome}`).toBe(caller.status);
        expect(problemOf(r.text)).toMatchObject({ status: caller.status });
        if (caller.status === 401) expect(r.text).toContain('www-authenticate: Bearer realm="sluice"');
        const lines = audits(sluice).slice(before);
        expect(lines, `${change.line} ${caller.outcome}`).toHaveLength(1);
        expect(lines[0]).toMatchObject({
          action: change.action,
          token_name: caller.token_name,
          outcome: caller.outcome,
          remote_addr: '127.0.0.1',
          ...change.where,
        });
      }
    }
  });

  // A dual-stack listener reports an IPv4 caller as ::ffff:127.0.0.1; the audit line wrote it so,
  // where every other log line writes client addresses as IPv4.
  it('audits an IPv4 caller of a [::] listener by its IPv4 address', async () => {
    const dual = await startSluice({
      admin: { listen: '[::]:0', tokens: TOKENS },
      servers: [{ listen: '127.0.0.1:0', routes: [{ respond: { body: 'ok\n' } }] }],
    });
    try {
      const before = audits(dual).length;
      const r = await rawRequest(
        portOf(dual),
        head('DELETE /api/bans/192.0.2.1 HTTP/1.1', `Authorization: Bearer ${SECRETS.operator}`),
      );
      expect(r.status).toBe(200);
      const lines = audits(dual).slice(before);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ action: 'unban', token_name: 'ops', remote_addr: '127.0.0.1' });
    } finally {
      await dual.close();
    }
  });

  // The Host check read `[0::1]` and `[::ffff:127.0.0.1]` as names, not loopback addresses: 403.
  it('without tokens, answers a Host that spells a loopback address any way, and no other address', async () => {
    const port = portOf(open);
    const hosts = {
      [`[0::1]:${port}`]: 200,
      [`[::FFFF:127.0.0.1]:${port}`]: 200,
      '[::ffff:7f00:2]': 200,
      '[::2]': 403,
      '[::ffff:10.0.0.1]': 403,
      '127.1': 403,
      '[::1%lo]': 403,
    };
    for (const [host, status] of Object.entries(hosts)) {
      const r = await rawRequest(
        port,
        `GET /api/status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, host).toBe(status);
    }
  });

  it('without tokens, audits a change refused for its Host as it audits one refused as read-only', async () => {
    const refusals = [
      { line: 'POST /api/reload HTTP/1.1', host: 'evil.example', action: 'reload', detail: /loopback host/ },
      { line: 'POST /api/reload HTTP/1.1', host: '127.0.0.1', action: 'reload', detail: /read-only/ },
      {
        line: 'DELETE /api/bans/%E0 HTTP/1.1',
        host: 'evil.example',
        action: 'unban',
        detail: /loopback host/,
      },
      { line: 'DELETE /api/bans/%E0 HTTP/1.1', host: 'localhost', action: 'unban', detail: /read-only/ },
    ];
    for (const refusal of refusals) {
      const before = audits(open).length;
      const r = await rawRequest(
        portOf(open),
        `${refusal.line}\r\nHost: ${refusal.host}\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, `${refusal.line} ${refusal.host}`).toBe(403);
      expect(String(problemOf(r.text).detail)).toMatch(refusal.detail);
      const lines = audits(open).slice(before);
      expect(lines, `${refusal.line} ${refusal.host}`).toHaveLength(1);
      expect(lines[0]).toMatchObject({ action: refusal.action, token_name: null, outcome: 'forbidden' });
    }
    // A read refused for its Host changes nothing: no audit line.
    const before = audits(open).length;
    const read = await rawRequest(
      portOf(open),
      'GET /api/config HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    );
    expect(read.status).toBe(403);
    expect(audits(open).slice(before)).toEqual([]);
  });
});

describe('admin API: a reload that moves the listener', () => {
  const OLD = { developer: 'developer-before-the-reload', operator: 'operator-before-the-reload' };
  const NEW = { developer: 'developer-after-the-reload', operator: 'operator-after-the-reload' };
  const config = (listen: string, secrets: typeof OLD): SluiceConfigInput => ({
    admin: {
      listen,
      tokens: [
        { name: 'dev', role: 'developer', token_sha256: sha(secrets.developer) },
        { name: 'ops', role: 'operator', token_sha256: sha(secrets.operator) },
      ],
    },
    servers: [{ listen: '127.0.0.1:0', routes: [{ respond: { body: 'ok\n' } }] }],
  });

  it('refuses the revoked tokens on the old address from the commit on, while the request in flight finishes', async () => {
    const sluice = await startSluice(config('127.0.0.1:0', OLD));
    try {
      const old = sluice.instance.addresses().admin!.port;
      // A keep-alive connection busy with a profile when the reload commits: it is not idle, so the
      // listener's close leaves it open.
      const socket = net.connect(old, '127.0.0.1');
      socket.setEncoding('latin1');
      let text = '';
      socket.on('data', (d: string) => {
        text += d;
      });
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      socket.write(
        `GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${OLD.developer}\r\n\r\n`,
      );
      await sleep(200);
      const moved = await freePort();
      await sluice.instance.reload(resolve(config(`127.0.0.1:${moved}`, NEW)));
      // Sent on that connection after the commit: the tokens the reload revoked, pipelined.
      socket.write(
        `GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${OLD.developer}\r\n\r\n` +
          `POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${OLD.operator}\r\nContent-Length: 0\r\n\r\n`,
      );
      await Promise.race([closed, sleep(5000)]);
      socket.destroy();
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      // The profile asked for before the reload is answered; the next request is refused and the
      // connection closed after it, so the pipelined reload is never served.
      expect(statuses).toEqual([200, 503]);
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
      expect(text).not.toContain('"admin"');
      expect(
        sluice.logs.filter(
          (l) => l.msg === 'admin action' && l.action === 'reload' && l.outcome === 'success',
        ),
      ).toEqual([]);

      // The new address knows only the new tokens.
      const at = (token: string) =>
        http(`http://127.0.0.1:${moved}/api/config`, { headers: { authorization: `Bearer ${token}` } });
      expect((await at(OLD.developer)).status).toBe(401);
      expect((await at(NEW.developer)).status).toBe(200);
    } finally {
      await sluice.close();
    }
  });

  it('audits a change asked of the old address after the commit as unavailable, naming the caller by the new tokens', async () => {
    const sluice = await startSluice(config('127.0.0.1:0', OLD));
    try {
      const old = sluice.instance.addresses().admin!.port;
      const socket = net.connect(old, '127.0.0.1');
      socket.setEncoding('latin1');
      let text = '';
      socket.on('data', (d: string) => {
        text += d;
      });
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      socket.write(
        `GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${OLD.developer}\r\n\r\n`,
      );
      await sleep(200);
      await sluice.instance.reload(resolve(config(`127.0.0.1:${await freePort()}`, NEW)));
      socket.write(
        `DELETE /api/bans/192.0.2.1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${NEW.operator}\r\n\r\n`,
      );
      await Promise.race([closed, sleep(5000)]);
      socket.destroy();
      expect([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200, 503]);
      const audits = sluice.logs.filter((l) => l.msg === 'admin action');
      expect(audits).toHaveLength(1);
      expect(audits[0]).toMatchObject({
        action: 'unban',
        token_name: 'ops',
        address: '192.0.2.1',
        outcome: 'unavailable',
      });
    } finally {
      await sluice.close();
    }
  });
});
