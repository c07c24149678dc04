/**
 * A quoted nginx value that spans lines, sent as a header (`add_header Content-Security-Policy
 * "default-src 'self';⏎    script-src ..."`). nginx sends its line breaks as they are: a line break
 * followed by spaces is an obsolete line folding (RFC 9112 section 5.2), which a client reads as one
 * space. sluice refuses line breaks in header values, so each one, with the spaces and tabs around
 * it, becomes one space: the value the client read, on one line.
 */
import type { SourcePlace } from './ast.js';
import type { WarningList } from './warnings.js';

/** Line breaks with the blanks around them; a run of blank lines is one fold. */
const FOLD = /[ \t]*(?:(?:\r\n|\r|\n)[ \t]*)+/g;

/**
 * `value` on one line, with a warning at `at` (said as `what`: `add_header X-A`) when it was not;
 * the value as written otherwise.
 */
export function foldedHeaderValue(
  value: string,
  what: string,
  at: SourcePlace,
  warnings: WarningList,
): string {
  if (!/[\r\n]/.test(value)) return value;
  warnings.add(
    at,
    `${what}: the value spans several lines, which nginx sends as they are (an obsolete folded header, read by clients as one space per line break); sluice sends it on one line, each line break with the spaces around it as one space`,
  );
  return value.replace(FOLD, ' ').trim();
}
