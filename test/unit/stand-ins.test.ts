import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadConfigLeavingEnv } from '../../src/cli/load-leaving-env.js';
import { loadConfigText } from '../../src/config/load.js';
import { StandIns } from '../../src/config/stand-ins.js';
import { INIT_TARGETS, type InitTargetName } from '../../src/ops/init/init-targets.js';

const TEXT = `servers:
  - listen: \${A_PORT}
    routes: [{ proxy: { url: "\${BACKEND}" } }]
  - listen: \${B_PORT}
    routes: [{ proxy: { url: "http://\${HOST}:3000/" } }]
workers: \${WORKERS}
shutdown_timeout: \${GRACE}
`;

describe('stand-ins for unset variables', () => {
  it('give each whole value one of the type its key takes, distinct per variable', () => {
    const r = loadConfigText(TEXT, 'sluice.yaml', {}, { standIns: new StandIns() });
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
    const [a, b] = r.config.servers;
    expect(a!.listen[0]!.port).not.toBe(b!.listen[0]!.port);
    expect(r.config.workers).toBe(1);
    expect(r.config.shutdownTimeoutMs).toBe(1000);
  });

  // Inside a longer string a variable read as a word only: `http://backend:${PORT}/` and
  // `0.0.0.0:${PORT}` failed the check, and the reload with them.
  it('give a variable inside a longer value the text of a value its key takes', () => {
    const r = loadConfigText(
      `servers:
  - listen: "127.0.0.1:\${LISTEN_PORT}"
    routes: [{ proxy: { url: "http://backend:\${BACKEND_PORT}/v1" } }]
`,
      'sluice.yaml',
      {},
      { standIns: new StandIns() },
    );
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
    expect(r.config.servers[0]!.listen[0]!.host).toBe('127.0.0.1');
  });

  it('without them the same file has one problem per variable', () => {
    const r = loadConfigText(TEXT, 'sluice.yaml', {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.code)).toEqual(Array(6).fill('SLUICE_E_CONFIG_ENV'));
  });

  it('leave the file its own problems', () => {
    const r = loadConfigText(`${TEXT}bogus: 1\n`, 'sluice.yaml', {}, { standIns: new StandIns() });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.message)).toEqual([expect.stringContaining('bogus')]);
  });

  it('varied for one variable, change only its values', () => {
    const base = new StandIns();
    const one = loadConfigText(TEXT, 'sluice.yaml', {}, { standIns: base });
    const other = loadConfigText(TEXT, 'sluice.yaml', {}, { standIns: base.varied('A_PORT') });
    if (!one.ok || !other.ok) throw new Error('not loaded');
    expect(base.names).toEqual(['A_PORT', 'BACKEND', 'B_PORT', 'HOST', 'WORKERS', 'GRACE']);
    expect(other.config.servers[0]!.listen[0]!.port).not.toBe(one.config.servers[0]!.listen[0]!.port);
    expect(other.config.servers[1]!.listen[0]!.port).toBe(one.config.servers[1]!.listen[0]!.port);
    expect(other.config.workers).toBe(one.config.workers);
  });
});

describe('what init derives from a variable the shell lacks', () => {
  const sized = `workers: \${SIZE_WORKERS}
servers:
  - listen: \${SIZE_PORT}
    limits: { max_connections: "\${SIZE_MAXC}", backlog: "\${SIZE_BACKLOG}" }
    routes: [{ proxy: { url: "\${SIZE_BACKEND}" } }]
`;

  /** The variables `target`'s files depend on, for a file of `text` on 4 CPUs and a host not known. */
  async function needed(target: InitTargetName, text: string): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-stand-ins-'));
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, text);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const result = await loadConfigLeavingEnv(file, 'the service', (config) =>
        INIT_TARGETS[target].render({
          config,
          configText: text,
          configPath: file,
          cpus: 4,
          sluiceBin: 'sluice',
        }),
      );
      if (result.ok) return [];
      return result.problems.map((p) => /variable (\w+) is not set/.exec(p.message)?.[1] ?? p.message);
    } finally {
      stderr.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('varied far, a number is past the floors and caps init applies, where its key takes it', () => {
    const base = new StandIns();
    const one = loadConfigText(sized, 'sluice.yaml', {}, { standIns: base });
    if (!one.ok) throw new Error(one.problems.map((p) => p.message).join('\n'));
    const far = (name: string) => {
      const r = loadConfigText(sized, 'sluice.yaml', {}, { standIns: base.varied(name, true) });
      if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
      return r.config;
    };
    expect(far('SIZE_WORKERS').workers).toBe(1000);
    expect(far('SIZE_MAXC').servers[0]!.limits.maxConnections).toBe(4_000_000);
    expect(far('SIZE_BACKLOG').servers[0]!.limits.backlog).toBe(4_000_000);
    expect(far('SIZE_BACKLOG').servers[0]!.limits.maxConnections).toBe(
      one.config.servers[0]!.limits.maxConnections,
    );
  });

  // The stand-ins (a count of 1 or 2, a port-sized number) both sized every value at its floor
  // (65535, 1000000 or 65536), so the outputs compared equal: sysctl wrote somaxconn = 65535 for a
  // backlog the service reads as 200000, and exit 0.
  it('a variable sysctl, limits or systemd sizes by is a problem; one they do not read stays a warning', async () => {
    expect(await needed('sysctl', sized)).toEqual(['SIZE_WORKERS', 'SIZE_MAXC', 'SIZE_BACKLOG']);
    expect(await needed('limits', sized)).toEqual(['SIZE_WORKERS', 'SIZE_MAXC']);
    expect(await needed('systemd', sized)).toEqual(['SIZE_WORKERS', 'SIZE_MAXC']);
    expect(await needed('k8s', sized)).toEqual(['SIZE_WORKERS', 'SIZE_PORT']);
    const unsized = `servers: [{ listen: "\${SIZE_PORT}", routes: [{ proxy: { url: "\${SIZE_BACKEND}" } }] }]\n`;
    for (const target of ['sysctl', 'limits', 'systemd'] as const)
      expect(await needed(target, unsized)).toEqual([]);
  });
});
