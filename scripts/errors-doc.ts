/**
 * docs/errors.md from the error catalogue. `npx tsx scripts/errors-doc.ts` rewrites the file; a
 * unit test fails when the two drift apart.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE } from '../src/errors/catalogue.js';

const AREAS: Record<string, string> = {
  CONFIG:
    'Config (reported by `sluice check`, `sluice start` and reloads as `FILE:LINE:COL: CODE message (hint: ...)`)',
  CLIENT: 'Client requests refused (answered to the client, never forwarded)',
  ROUTE: 'Routing',
  UPSTREAM: 'Upstream failures (answered 502 or 504)',
  RUNTIME: 'Runtime',
  HANDLER: 'Handlers (user code in handler routes and sluice serve)',
  AUTH: 'Access control (allow/deny, bans, rate limits): answered to the client, never forwarded',
  ADMIN: 'Admin API',
  CLI: 'Command line',
};

/** The whole of docs/errors.md. */
export function errorsMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error sluice reports carries a permanent code `SLUICE_E_<AREA>_<WHAT>`. Codes never change',
    'meaning; new ones may be added. Answers to clients are `application/problem+json` with the code,',
    'and an `x-sluice-error-id` header equal to the `request_id` of the access-log line for that request',
    '(the body has it as `request_id` too). So do answers written before there was a request to serve: a',
    'request head the parser refused (400, 431, 408), plain HTTP on a TLS port (400), a connection over',
    '`max_connections` (503).',
    '',
    'This page is generated from `src/errors/catalogue.ts` by `npx tsx scripts/errors-doc.ts`.',
    '',
  ];
  for (const [area, title] of Object.entries(AREAS)) {
    const entries = Object.entries(ERROR_CATALOGUE).filter(([code]) => code.startsWith(`SLUICE_E_${area}_`));
    if (entries.length === 0) continue;
    lines.push(`## ${title}`, '', '| code | HTTP status | what happened | what to do |', '|---|---|---|---|');
    for (const [code, spec] of entries) {
      lines.push(
        `| \`${code}\` | ${spec.status === 0 ? '—' : spec.status} | ${spec.title} | ${spec.hint.replaceAll('|', '\\|')} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
  writeFileSync(target, errorsMarkdown());
  console.log(`wrote ${target}`);
}
