import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { StandIns } from '../../src/config/stand-ins.js';

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
