/** The files under deploy/ are valid for the tools that read them. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

interface Panel {
  title: string;
  targets: { expr: string }[];
}

describe('deploy/', () => {
  it('prometheus.yml passes promtool check config', () => {
    expect(
      execFileSync('promtool', ['check', 'config', 'deploy/prometheus.yml'], { encoding: 'utf8' }),
    ).toContain('SUCCESS');
  });

  it('every Grafana panel query is valid PromQL over sluice metric names', () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as {
      panels: Panel[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr.replaceAll('$job', 'sluice')));
    expect(exprs.length).toBeGreaterThan(10);
    for (const e of exprs) expect(e).toMatch(/sluice_|nodejs_|process_/);
    // promtool checks the PromQL of recording rules: one rule per panel query.
    const rules = `groups:\n  - name: dashboard\n    rules:\n${exprs.map((e, i) => `      - record: dashboard:q${i}\n        expr: ${JSON.stringify(e)}\n`).join('')}`;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
    writeFileSync(join(dir, 'rules.yml'), rules);
    expect(
      execFileSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' }),
    ).toContain('SUCCESS');
  });
});
