/**
 * `server_name ~...` regexes (PCRE) → JavaScript regexes, as sluice compiles them (`new
 * RegExp(source)`, no flags). Host names are matched as the text they are; location regexes,
 * matched against escaped paths, are path-regex.ts.
 *
 * - Case-insensitive matching (`~*`, a leading `(?i)`) has no flag to carry it, and inline
 *   modifiers are not in Node 20's JavaScript; letters are rewritten as character classes instead
 *   (`\.php$` → `\.[pP][hH][pP]$`), inside classes too (`[a-f]` → `[a-fA-F]`).
 * - Python-style named groups (`(?P<name>...)`, `(?P=name)`) become JavaScript's.
 * - PCRE-only syntax that JavaScript would read differently or not at all (`\A`, `\z`, `\Q...\E`,
 *   possessive quantifiers, atomic groups, POSIX classes, `\p{..}` without the u flag...) is
 *   refused, so the caller drops the name with a warning rather than emit a regex that
 *   silently matches something else.
 *
 * One scan over the pattern, O(length).
 */
import { regexError } from '../../config/regex-check.js';

/** A translated regex, or why it cannot be. */
export type RegexResult = { readonly source: string } | { readonly error: string };

const UNSUPPORTED_ESCAPES: Readonly<Record<string, string>> = {
  A: '\\A (start of subject)',
  Z: '\\Z (end of subject)',
  z: '\\z (end of subject)',
  G: '\\G (first match position)',
  Q: '\\Q...\\E (quoting)',
  E: '\\E (end of quoting)',
  K: '\\K (reset match start)',
  h: '\\h (horizontal space)',
  H: '\\H',
  R: '\\R (any newline)',
  X: '\\X (extended grapheme)',
  C: '\\C (one code unit)',
  N: '\\N',
  p: '\\p{...} (Unicode property)',
  P: '\\P{...} (Unicode property)',
  g: '\\g (back reference)',
  e: '\\e (escape character)',
  a: '\\a (bell character)',
  o: '\\o{...} (octal)',
};

/** Translates a PCRE pattern; `caseless` folds ASCII letters as `~*` does. */
export function translateRegex(pcre: string, caseless: boolean): RegexResult {
  let source = pcre;
  let fold = caseless;
  // A leading (?i) is the one inline flag nginx configs commonly use.
  if (source.startsWith('(?i)')) {
    fold = true;
    source = source.slice(4);
  }
  let out = '';
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i]!;
    if (c === '\\') {
      const e = escapeAt(source, i);
      if ('error' in e) return e;
      out += e.text;
      i += e.text.length;
      continue;
    }
    if (c === '[') {
      const cls = classAt(source, i, fold);
      if ('error' in cls) return cls;
      out += cls.text;
      i = cls.end;
      continue;
    }
    if (c === '(' && source[i + 1] === '?') {
      const g = groupAt(source, i);
      if ('error' in g) return g;
      out += g.text;
      i = g.end;
      continue;
    }
    if ((c === '*' || c === '+' || c === '?' || c === '}') && source[i + 1] === '+') {
      return { error: `possessive quantifier ${c}+ is not JavaScript regex syntax` };
    }
    out += fold ? foldLetter(c) : c;
    i++;
  }
  const error = regexError(out);
  return error === undefined ? { source: out } : { error };
}

function escapeAt(source: string, i: number): { text: string } | { error: string } {
  const next = source[i + 1];
  if (next === undefined) return { error: 'the pattern ends with a lone backslash' };
  const unsupported = UNSUPPORTED_ESCAPES[next];
  if (unsupported !== undefined) return { error: `${unsupported} is not JavaScript regex syntax` };
  // Escapes that take more than one character after the backslash keep their letters unfolded.
  const long = /^\\(x[0-9a-fA-F]{2}|x\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|c[A-Za-z]|k<[A-Za-z_]\w*>|[0-9]+)/.exec(
    source.slice(i),
  );
  if (long) {
    if (long[1]!.startsWith('x{')) return { error: '\\x{...} is not JavaScript regex syntax' };
    return { text: long[0] };
  }
  return { text: source.slice(i, i + 2) };
}

function groupAt(source: string, i: number): { text: string; end: number } | { error: string } {
  const rest = source.slice(i);
  const named = /^\(\?(?:P<|<|')([A-Za-z_]\w*)[>']/.exec(rest);
  if (named) return { text: `(?<${named[1]}>`, end: i + named[0].length };
  const backref = /^\(\?P=([A-Za-z_]\w*)\)/.exec(rest);
  if (backref) return { text: `\\k<${backref[1]}>`, end: i + backref[0].length };
  const plain = /^\(\?(?::|=|!|<=|<!)/.exec(rest);
  if (plain) return { text: plain[0], end: i + plain[0].length };
  return { error: `the group ${JSON.stringify(rest.slice(0, 4))}... is not JavaScript regex syntax` };
}

/** A character class `[...]`, letters folded when asked. */
function classAt(
  source: string,
  start: number,
  fold: boolean,
): { text: string; end: number } | { error: string } {
  let i = start + 1;
  let text = '[';
  if (source[i] === '^') {
    text += '^';
    i++;
  }
  // A "]" right after "[" or "[^" is a literal in PCRE; JavaScript needs it escaped.
  if (source[i] === ']') {
    text += '\\]';
    i++;
  }
  // Items as written, so a folded letter or range that is already there is not added twice.
  const items: string[] = [];
  const extra: string[] = [];
  while (i < source.length && source[i] !== ']') {
    if (source[i] === '[' && source[i + 1] === ':')
      return { error: 'POSIX classes such as [[:alpha:]] are not JavaScript regex syntax' };
    let atom: string;
    if (source[i] === '\\') {
      const e = escapeAt(source, i);
      if ('error' in e) return e;
      atom = e.text;
    } else atom = source[i]!;
    i += atom.length;
    // A range a-z: fold the letters it covers.
    if (source[i] === '-' && source[i + 1] !== undefined && source[i + 1] !== ']' && atom.length === 1) {
      const hi = source[i + 1] === '\\' ? null : source[i + 1]!;
      if (hi !== null) {
        text += `${atom}-${hi}`;
        items.push(`${atom}-${hi}`);
        if (fold) extra.push(...foldRange(atom, hi));
        i += 2;
        continue;
      }
    }
    text += atom;
    items.push(atom);
    if (fold && atom.length === 1) {
      const other = otherCase(atom);
      if (other !== undefined) extra.push(other);
    }
  }
  if (i >= source.length) return { error: 'a character class "[" is not closed' };
  return { text: `${text}${[...new Set(extra)].filter((x) => !items.includes(x)).join('')}]`, end: i + 1 };
}

function otherCase(c: string): string | undefined {
  if (c >= 'a' && c <= 'z') return c.toUpperCase();
  if (c >= 'A' && c <= 'Z') return c.toLowerCase();
  return undefined;
}

function foldLetter(c: string): string {
  const other = otherCase(c);
  return other === undefined ? c : `[${c}${other}]`;
}

/** The other-case ranges of the letters in `lo-hi`. */
function foldRange(lo: string, hi: string): string[] {
  const a = lo.charCodeAt(0);
  const b = hi.charCodeAt(0);
  const out: string[] = [];
  for (const [from, to, shift] of [
    [0x41, 0x5a, 0x20],
    [0x61, 0x7a, -0x20],
  ] as const) {
    const x = Math.max(a, from);
    const y = Math.min(b, to);
    if (x > y) continue;
    const p = String.fromCharCode(x + shift);
    const q = String.fromCharCode(y + shift);
    out.push(x === y ? p : `${p}-${q}`);
  }
  return out;
}

/** Whether the pattern has a `|` outside any group or class. */
export function hasTopLevelAlternation(source: string): boolean {
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '[') {
      i++;
      if (source[i] === '^') i++;
      if (source[i] === ']') i++;
      while (i < source.length && source[i] !== ']') {
        if (source[i] === '\\') i++;
        i++;
      }
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/**
 * A regex that matches what `source` matches among the paths for which `assertions` (lookaheads,
 * regex source) hold at the start.
 */
export function assertRegex(source: string, assertions: string): string {
  if (source.startsWith('^') && !hasTopLevelAlternation(source)) return `^${assertions}${source.slice(1)}`;
  return `^${assertions}[\\s\\S]*?(?:${source})`;
}
