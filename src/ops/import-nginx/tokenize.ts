/**
 * The nginx config tokenizer: words, quoted strings, `;`, `{`, `}` and `#` comments, each with
 * its line.
 *
 * Hand-written rather than borrowed from a parser library because nginx's lexical rules are few
 * but peculiar, and a generic grammar gets them subtly wrong. This follows
 * `ngx_conf_read_token()` (src/core/ngx_conf_file.c):
 *
 * - a word ends at whitespace, `;` or `{`, but not at `}` (`a}` is one word) and not at the `{`
 *   of a `${name}` variable;
 * - `#` starts a comment only where a token could start (`a#b` is one word);
 * - a backslash protects the next character everywhere; when the token is kept, `\"`, `\'` and
 *   `\\` lose the backslash, `\t`, `\r`, `\n` become the control character, and any other
 *   backslash stays (so regexes such as `\.php$` arrive intact);
 * - a quoted string must be followed by whitespace, `;`, `{` or `)`.
 *
 * One pass over the text, O(length).
 */
import { NginxSyntaxError } from './nginx-syntax-error.js';

/** One token, at the 1-based line and column of its first character. Words carry their text after unescaping. */
export type Token =
  | {
      readonly kind: 'word';
      readonly value: string;
      readonly quoted: boolean;
      readonly line: number;
      readonly col: number;
      /** Where the word ends: the line and column just after its last character. */
      readonly endLine: number;
      readonly endCol: number;
    }
  | { readonly kind: ';' | '{' | '}'; readonly line: number; readonly col: number };

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** Splits nginx config text into tokens; throws `NginxSyntaxError` for an unclosed or misplaced quote. */
export function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  // Index of the first character of the current line, so a column is `i - lineStart + 1`.
  let lineStart = 0;
  let i = 0;
  const n = text.length;
  const newline = (at: number): void => {
    line++;
    lineStart = at + 1;
  };
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      newline(i);
      i++;
    } else if (isSpace(c)) {
      i++;
    } else if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === ';' || c === '{' || c === '}') {
      tokens.push({ kind: c, line, col: i - lineStart + 1 });
      i++;
    } else if (c === '"' || c === "'") {
      const start = line;
      const startCol = i - lineStart + 1;
      let raw = '';
      i++;
      for (;;) {
        if (i >= n) {
          throw new NginxSyntaxError(
            file,
            start,
            startCol,
            `unexpected end of file: the string opened here is not closed by ${c}`,
          );
        }
        const d = text[i]!;
        if (d === '\\' && i + 1 < n) {
          if (text[i + 1] === '\n') newline(i + 1);
          raw += d + text[i + 1];
          i += 2;
          continue;
        }
        if (d === c) break;
        if (d === '\n') newline(i);
        raw += d;
        i++;
      }
      i++;
      const next = text[i];
      // nginx accepts ")" here for `if ($a = "b")`; the ")" then starts the next word.
      if (next !== undefined && !isSpace(next) && next !== ';' && next !== '{' && next !== ')') {
        throw new NginxSyntaxError(
          file,
          line,
          i - lineStart + 1,
          `unexpected ${JSON.stringify(next)} after a quoted string`,
        );
      }
      tokens.push({
        kind: 'word',
        value: unescapeToken(raw),
        quoted: true,
        line: start,
        col: startCol,
        endLine: line,
        endCol: i - lineStart + 1,
      });
    } else {
      const start = line;
      const startCol = i - lineStart + 1;
      let raw = '';
      let variable = false;
      while (i < n) {
        const d = text[i]!;
        if (d === '{' && variable) {
          raw += d;
          i++;
          variable = false;
          continue;
        }
        variable = false;
        if (d === '\\') {
          if (i + 1 < n) {
            if (text[i + 1] === '\n') newline(i + 1);
            raw += d + text[i + 1];
            i += 2;
          } else {
            raw += d;
            i++;
          }
          continue;
        }
        if (isSpace(d) || d === ';' || d === '{') break;
        if (d === '$') variable = true;
        raw += d;
        i++;
      }
      tokens.push({
        kind: 'word',
        value: unescapeToken(raw),
        quoted: false,
        line: start,
        col: startCol,
        endLine: line,
        endCol: i - lineStart + 1,
      });
    }
  }
  return tokens;
}

/** nginx's escape rules when it copies a token (see the file comment). */
function unescapeToken(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = raw[i + 1];
    if (next === '"' || next === "'" || next === '\\') {
      out += next;
      i++;
    } else if (next === 't') {
      out += '\t';
      i++;
    } else if (next === 'r') {
      out += '\r';
      i++;
    } else if (next === 'n') {
      out += '\n';
      i++;
    } else {
      out += c;
    }
  }
  return out;
}
