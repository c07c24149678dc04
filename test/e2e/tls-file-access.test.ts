/**
 * A TLS key the user sluice runs as may not read (a Let's Encrypt privkey.pem is root:root 0600,
 * sluice started as User= by systemd): the start fails with SLUICE_E_RUNTIME_LISTEN, and its hint
 * says which user sluice runs as and that the file must be readable by it. The hint was "a TLS
 * file may have changed since the config was loaded", which sent people after a race that never was.
 * Run as root, the test starts sluice as nobody; otherwise the key is made unreadable to its owner.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, requireBuilt, runCli, tempDir } from '../helpers/cli.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
/**
 * Whether nobody may run this Node at all: one fetched by `npx node@24` lives under /root, which
 * nobody cannot enter (spawn EACCES), and root cannot be refused the key: nothing to test then.
 */
const nodeBarred =
  asRoot && spawnSync(process.execPath, ['-e', ''], { uid: NOBODY, gid: NOBODY }).error !== undefined;

describe('a TLS key sluice may not read (built CLI)', () => {
  let pki: TestPki;
  let tmp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    requireBuilt();
    pki = makePki();
    tmp = await tempDir('sluice-tls-access-');
    // Entered and read by the user sluice runs as; only the key is kept from it.
    await chmod(tmp.path, 0o755);
  });
  afterAll(async () => {
    await killAll();
    pki?.remove();
    await tmp?.remove();
  });

  it.skipIf(nodeBarred)(
    'fails the start with a hint naming the user and the file, not a change on disk',
    async () => {
      const leaf = pki.ca('ca').leaf('web', { dns: ['localhost'], usage: 'server' });
      const cert = join(tmp.path, 'cert.pem');
      const key = join(tmp.path, 'key.pem');
      copyFileSync(leaf.cert, cert);
      copyFileSync(leaf.key, key);
      await chmod(cert, 0o644);
      await chmod(key, asRoot ? 0o600 : 0o000);
      const port = await freePort();
      await writeFile(
        join(tmp.path, 'sluice.yaml'),
        [
          'workers: 1',
          'servers:',
          `  - name: web`,
          `    listen: "127.0.0.1:${port}"`,
          `    tls: { cert: ${cert}, key: ${key} }`,
          '    routes: [{ respond: { body: ok } }]',
        ].join('\n'),
      );
      await chmod(join(tmp.path, 'sluice.yaml'), 0o644);
      const r = await runCli(['start', '-c', join(tmp.path, 'sluice.yaml')], {
        cwd: tmp.path,
        ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
      });
      expect(r.code).toBe(1);
      const user = asRoot ? 'nobody' : userInfo().username;
      expect(r.stderr).toMatch(/SLUICE_E_RUNTIME_LISTEN .*EACCES/);
      expect(r.stderr).toContain(
        `(hint: sluice runs as user ${user}, which may not read ${key}: make it readable`,
      );
      expect(r.stderr).not.toContain('may have changed');
    },
  );
});
