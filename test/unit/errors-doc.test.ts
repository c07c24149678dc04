import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorsMarkdown } from '../../scripts/errors-doc.js';
import { ERROR_CATALOGUE } from '../../src/errors/catalogue.js';

describe('docs/errors.md', () => {
  it('lists exactly the catalogue (run npx tsx scripts/errors-doc.ts after changing it)', () => {
    expect(readFileSync('docs/errors.md', 'utf8')).toBe(errorsMarkdown());
  });

  it('names every code once and every code follows SLUICE_E_<AREA>_<WHAT>', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    for (const code of Object.keys(ERROR_CATALOGUE)) {
      expect(code).toMatch(
        /^SLUICE_E_(CONFIG|CLIENT|ROUTE|UPSTREAM|RUNTIME|CLI|ADMIN|AUTH|HANDLER)_[A-Z_]+$/,
      );
      expect(doc.split(`\`${code}\``).length - 1).toBe(1);
    }
  });
});
