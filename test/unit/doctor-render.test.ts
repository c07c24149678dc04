/**
 * The doctor's renderers: the JSON shape of the contract, and the table with and without colour.
 */
import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/ops/doctor/doctor-check.js';
import { renderJson } from '../../src/ops/doctor/render-json.js';
import { colorWanted, renderTable } from '../../src/ops/doctor/render-table.js';

const RESULTS: CheckResult[] = [
  {
    id: 'nofile',
    status: 'pass',
    value: '1048576',
    expected: '>= 65536',
    message: 'open files per process',
    fix: '',
  },
  {
    id: 'somaxconn',
    status: 'fail',
    value: '4096',
    expected: '>= 65535',
    message: 'accept queue cap',
    fix: 'sysctl -w net.core.somaxconn=65535',
  },
  {
    id: 'time_sync',
    status: 'warn',
    value: null,
    expected: 'synchronised',
    message: 'cannot tell: chronyc not installed',
    fix: 'timedatectl set-ntp true',
  },
];

const ANSI = /\u001b\[/;

describe('renderJson', () => {
  it('prints { checks: [...] } with the six contract keys, in order', () => {
    const text = renderJson(RESULTS);
    expect(text.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(text) as { checks: Record<string, unknown>[] };
    expect(Object.keys(parsed)).toEqual(['checks']);
    expect(parsed.checks).toHaveLength(3);
    for (const c of parsed.checks)
      expect(Object.keys(c)).toEqual(['id', 'status', 'value', 'expected', 'message', 'fix']);
    expect(parsed.checks[2]).toMatchObject({ id: 'time_sync', value: null });
  });
});

describe('renderTable', () => {
  it('one row per check, a fix line under each that does not pass, and the counts', () => {
    const text = renderTable(RESULTS, { color: false });
    expect(text).not.toMatch(ANSI);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^STATUS\s+CHECK\s+VALUE\s+EXPECTED\s+MESSAGE$/);
    expect(lines[1]).toMatch(/^PASS\s+nofile\s+1048576\s+>= 65536\s+open files per process$/);
    expect(lines[2]).toMatch(/^FAIL\s+somaxconn\s+4096\s+>= 65535\s+accept queue cap$/);
    expect(lines[3]).toBe('        fix: sysctl -w net.core.somaxconn=65535');
    expect(lines[4]).toMatch(/^WARN\s+time_sync\s+-\s+synchronised\s+cannot tell/);
    expect(lines[5]).toBe('        fix: timedatectl set-ntp true');
    expect(lines.at(-1)).toBe('3 checks: 1 pass, 1 warn, 1 fail');
    // Columns line up: every row's CHECK starts where the header's does.
    const at = lines[0]!.indexOf('CHECK');
    for (const i of [1, 2, 4]) expect(lines[i]!.slice(at, at + 4)).toMatch(/^[a-z_]{4}$/);
  });

  it('colours the statuses when asked', () => {
    const text = renderTable(RESULTS, { color: true });
    expect(text).toMatch(ANSI);
    expect(text.replace(/\u001b\[[0-9;]*m/g, '')).toBe(renderTable(RESULTS, { color: false }));
  });
});

describe('colorWanted', () => {
  it('NO_COLOR wins; FORCE_COLOR forces; else only a terminal', () => {
    expect(colorWanted({}, true)).toBe(true);
    expect(colorWanted({}, false)).toBe(false);
    expect(colorWanted({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colorWanted({ NO_COLOR: '1', FORCE_COLOR: '1' }, true)).toBe(false);
    expect(colorWanted({ NO_COLOR: '' }, true)).toBe(true);
    expect(colorWanted({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(colorWanted({ FORCE_COLOR: '0' }, true)).toBe(false);
  });
});
