import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
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

  // A client's problem document (about:blank) carries the status phrase as its title (RFC 9457 4.2.1):
  // the table's "what happened" must be what the client reads. The admin API's own titles differ.
  it("gives each client-facing code its status's phrase as the title the client reads", () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      if (spec.status === 0 || code.startsWith('SLUICE_E_ADMIN_')) continue;
      expect(`${code}: ${spec.title}`).toBe(`${code}: ${STATUS_CODES[spec.status]}`);
    }
  });
});
