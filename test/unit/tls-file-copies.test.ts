/**
 * The node's copies of its TLS files: the primary keeps the last set of files that made a context
 * (never half of a rotation), one copy per file however many servers share it; a worker that holds
 * them while it starts builds a server certificate or an upstream's TLS from them when the files
 * cannot be used, says so, and loads the files once they change.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfigObject } from '../../src/config/load.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import { TlsFileCopies } from '../../src/core/tls-file-copies.js';
import { setUpstreamTlsLog, UpstreamTls } from '../../src/proxy/upstream-tls.js';
import { TlsFileKeeper } from '../../src/runtime/tls-file-keeper.js';
import { ServerTlsContext } from '../../src/server/tls-server-context.js';
import { type CertFiles, makePki, type TestCa, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let root: TestCa;
let first: CertFiles;
let second: CertFiles;
/** The files the config names, in pki.dir. */
const live = { cert: '', key: '', ca: '' };

function replace(from: string, to: string): void {
  copyFileSync(from, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
}

function fingerprint(bytes: Buffer | string | undefined): string {
  return new X509Certificate(bytes as Buffer).fingerprint256;
}

function config(): ResolvedConfig {
  const tls = { cert: live.cert, key: live.key };
  const result = resolveConfigObject({
    servers: [
      {
        name: 'a',
        listen: '127.0.0.1:0',
        server_name: ['a.test'],
        tls,
        routes: [{ respond: { body: 'a' } }],
      },
      {
        name: 'b',
        listen: '127.0.0.1:0',
        server_name: ['b.test'],
        tls,
        routes: [{ respond: { body: 'b' } }],
      },
    ],
    upstreams: { back: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { ca: live.ca } } },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

/** The first pair and the CA in place, and the config that names them. */
function firstFiles(): ResolvedConfig {
  replace(first.cert, live.cert);
  replace(first.key, live.key);
  replace(root.cert, live.ca);
  return config();
}

/** The copies a primary would send with a worker that replaces one (through the wire). */
function primaryCopies(c: ResolvedConfig): TlsFileCopies {
  const keeper = new TlsFileKeeper(60_000);
  keeper.follow(c);
  const wire = keeper.copies(c).toWire();
  keeper.close();
  return TlsFileCopies.fromWire(wire);
}

beforeAll(() => {
  pki = makePki();
  root = pki.ca('root');
  first = root.leaf('first', { dns: ['a.test'], usage: 'server' });
  second = root.leaf('second', { dns: ['a.test'], usage: 'server' });
  live.cert = join(pki.dir, 'live.pem');
  live.key = join(pki.dir, 'live.key');
  live.ca = join(pki.dir, 'live-ca.pem');
});

afterAll(() => pki?.remove());

describe('TlsFileKeeper', () => {
  it('keeps one copy per file, follows a rotation, and never keeps half of one', async () => {
    const c = firstFiles();
    const keeper = new TlsFileKeeper(60_000);
    try {
      keeper.follow(c);
      const wire = keeper.copies(c).toWire();
      expect(Object.keys(wire).sort()).toEqual([live.ca, live.cert, live.key].sort());
      expect(fingerprint(TlsFileCopies.fromWire(wire).read(live.cert))).toBe(
        fingerprint(readFileSync(first.cert)),
      );

      // The new certificate without its key: no context, the copy stays the whole first pair.
      replace(second.cert, live.cert);
      await keeper.poll();
      const half = keeper.copies(c);
      expect(fingerprint(half.read(live.cert))).toBe(fingerprint(readFileSync(first.cert)));
      expect(half.read(live.key).equals(readFileSync(first.key))).toBe(true);

      replace(second.key, live.key);
      await keeper.poll();
      const whole = keeper.copies(c);
      expect(fingerprint(whole.read(live.cert))).toBe(fingerprint(readFileSync(second.cert)));
      expect(whole.read(live.key).equals(readFileSync(second.key))).toBe(true);

      // A config without the upstream: its CA is let go.
      const fewer = { ...c, upstreams: {} } as ResolvedConfig;
      keeper.retain([fewer]);
      expect(Object.keys(keeper.copies(c).toWire()).sort()).toEqual([live.cert, live.key].sort());
    } finally {
      keeper.close();
    }
  });

  it('has no copy of a set it cannot load, and keeps watching it', async () => {
    const c = firstFiles();
    renameSync(live.cert, `${live.cert}.away`);
    const keeper = new TlsFileKeeper(60_000);
    try {
      keeper.follow(c);
      expect(Object.keys(keeper.copies(c).toWire())).toEqual([live.ca]);
      renameSync(`${live.cert}.away`, live.cert);
      await keeper.poll();
      expect(Object.keys(keeper.copies(c).toWire()).sort()).toEqual([live.ca, live.cert, live.key].sort());
    } finally {
      keeper.close();
    }
  });
});

describe('a worker that starts holding the copies', () => {
  it('builds a server certificate from them when its files cannot be used, then loads the files', async () => {
    const c = firstFiles();
    const copies = primaryCopies(c);
    renameSync(live.cert, `${live.cert}.away`);
    const tls = c.servers[0]!.tls!;
    const hooks = { reloads: 0, copies: [] as Record<string, unknown>[] };
    const open = () =>
      new ServerTlsContext(
        tls,
        {
          onReload: () => hooks.reloads++,
          onError: () => undefined,
          onCopy: (_ctx, err, report) =>
            hooks.copies.push({ code: (err as NodeJS.ErrnoException).code, ...report }),
        },
        60_000,
      );
    // Not holding them (a start, a reload): the files must load.
    expect(open).toThrow(/ENOENT/);

    const release = TlsFileCopies.hold(copies);
    let ctx: ServerTlsContext;
    try {
      ctx = open();
    } finally {
      release();
    }
    try {
      expect(TlsFileCopies.held).toBeNull();
      expect(hooks.copies).toEqual([
        expect.objectContaining({
          code: 'ENOENT',
          file: live.cert,
          copy_sha256: fingerprint(readFileSync(first.cert)),
        }),
      ]);
      expect(fingerprint(ctx.options.cert as Buffer)).toBe(fingerprint(readFileSync(first.cert)));

      // The files come back, rotated: loaded from disk at the next look.
      replace(second.key, live.key);
      replace(second.cert, live.cert);
      await ctx.poll();
      expect(hooks.reloads).toBe(1);
      expect(fingerprint(ctx.options.cert as Buffer)).toBe(fingerprint(readFileSync(second.cert)));
    } finally {
      ctx.close();
    }
  });

  // The primary reads as root: a key kept from the workers' user must not reach them this way.
  it('are not used for files that are there but refused to the worker (EACCES, EPERM)', () => {
    const copies = primaryCopies(firstFiles());
    const release = TlsFileCopies.hold(copies);
    try {
      for (const code of ['EACCES', 'EPERM']) {
        const refused = Object.assign(new Error(`${code}: open`), { code });
        expect(() => TlsFileCopies.fallBack(refused, (read) => read(live.key), live.cert)).toThrow(refused);
      }
      const missing = Object.assign(new Error('ENOENT: open'), { code: 'ENOENT' });
      expect(TlsFileCopies.fallBack(missing, (read) => read(live.key), live.cert).value).toBeInstanceOf(
        Buffer,
      );
    } finally {
      release();
    }
  });

  it("uses an upstream's copies when its CA cannot be read, and is told so", () => {
    const c = firstFiles();
    const copies = primaryCopies(c);
    renameSync(live.ca, `${live.ca}.away`);
    const upstreamTls = c.upstreams.back!.tls!;
    expect(() => new UpstreamTls(upstreamTls, 60_000)).toThrow(/ENOENT/);
    const used: Record<string, unknown>[] = [];
    setUpstreamTlsLog({
      reloadFailed: () => undefined,
      copyInUse: (err, info) => used.push({ code: (err as NodeJS.ErrnoException).code, ...info }),
    });
    const release = TlsFileCopies.hold(copies);
    try {
      const upstream = new UpstreamTls(upstreamTls, 60_000);
      expect(upstream.connectionOptions.secureContext).toBeDefined();
      upstream.release();
    } finally {
      release();
      renameSync(`${live.ca}.away`, live.ca);
    }
    expect(used).toEqual([expect.objectContaining({ code: 'ENOENT', ca: live.ca, file: live.ca })]);
  });
});
