import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';

/** Fixture paths are relative to the repository root, as a user would pass them to `-c`. */
const INVALID = 'test/fixtures/config/invalid';
const VALID = 'test/fixtures/config/valid';
const ENV = { SLUICE_TEST_PORT: '8080' };

const invalid = readdirSync(INVALID).filter((f) => f.endsWith('.yaml'));

describe('invalid config fixtures', () => {
  it('has at least ten fixtures, each with its expected problems', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(10);
    for (const f of invalid) expect(readdirSync(INVALID)).toContain(f.replace(/\.yaml$/, '.expected.txt'));
  });

  it.each(invalid)('%s reports exactly the expected problems, in document order', async (name) => {
    const result = await loadConfigFile(`${INVALID}/${name}`, ENV);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const expected = readFileSync(`${INVALID}/${name.replace(/\.yaml$/, '.expected.txt')}`, 'utf8');
    expect(`${result.problems.map((p) => formatProblem(p)).join('\n')}\n`).toBe(expected);
    const positions = result.problems.map((p) => p.line * 10_000 + p.col);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });
});

describe('valid config fixtures', () => {
  it.each(readdirSync(VALID))('%s loads without problems or warnings', async (name) => {
    const result = await loadConfigFile(`${VALID}/${name}`, {
      SLUICE_TEST_PORT: '8081',
      SLUICE_TEST_USER: 'alice',
    });
    expect(result.ok ? [] : result.problems.map((p) => formatProblem(p))).toEqual([]);
    expect(result.ok && result.warnings).toEqual([]);
  });
});
