/**
 * A quoted nginx value that spans lines, sent as a header (`add_header Content-Security-Policy
 * "default-src 'self';⏎    script-src ..."`). nginx sends its line breaks as they are, inside the
 * header line. A line break followed by a space or tab is an obsolete line folding (RFC 9112
 * section 5.2), which a receiver that accepts it reads as one space; any other line break ends the
 * header line there, and the receiver refuses the message or loses what follows (`"one⏎two"`).
 * sluice refuses line breaks in header values, so each one, with the spaces and tabs around it,
 * becomes one space: the folded value as it is read, on one line.
 */
import type { SourcePlace } from './ast.js';
import type { WarningList } from './warnings.js';

/** Line breaks with the blanks around them; a run of blank lines is one fold. */
const FOLD = /[ \t]*(?:(?:\r\n|\r|\n)[ \t]*)+/g;
/** A line break that no space or tab follows: no folding, the end of the header line. */
const BREAK = /(?:\r\n|\r(?!\n)|\n)(?![ \t])/;

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
  const sent = BREAK.test(value)
    ? 'a line break without a space or tab after it ends the header there, and the receiver refuses the message or loses what follows'
    : 'each line break followed by a space or tab is an obsolete line folding, read as one space by a receiver that accepts it';
  warnings.add(
    at,
    `${what}: the value spans several lines, which nginx sends as they are: ${sent}; sluice sends it on one line, each line break with the spaces around it as one space`,
  );
  return value.replace(FOLD, ' ').trim();
}
