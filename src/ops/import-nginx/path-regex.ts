/**
 * A location regex (PCRE, matched by nginx against the decoded path, byte by byte) → a JavaScript
 * regex matched by sluice against the normalised path, which keeps escapes (encoded-path.ts). The
 * two choose the same paths: each byte the PCRE pattern matches becomes every spelling sluice can
 * give it, so `^/naïve` is `^/na(?:\xC3|%C3)(?:\xAF|%AF)ve` (escaped over HTTP/1.1, raw over
 * HTTP/2), `\s` is `%(?:0[9-D]|20)`, `.` is `(?:[^%]|%(?!0A)[0-9A-F]{2})` and `!` is `(?:!|%21)`.
 *
 *   PCRE (nginx: no UTF mode, so one atom is one byte)   JavaScript over the normalised path
 *   literal byte, class, . \d \w \s \h \v \N [[:alpha:]]  one byte's spellings (raw and/or %XX)
 *   ~* and (?i)                                            ASCII letters folded into the sets
 *   $  \Z                                                  (?=(?:%0A)?$): PCRE's $ also matches
 *                                                          before a final newline (%0A)
 *   \z  \A  \G                                             $  ^  ^
 *   ^ $ with (?m)                                          also after / before %0A
 *   \b \B                                                  lookarounds on raw word characters
 *   \Q...\E                                                the literal bytes
 *   (?>X), X*+                                             (?=(?<n>X))\k<n>: JavaScript's
 *                                                          lookahead does not backtrack, as an
 *                                                          atomic group
 *   (?<=X) (?<!X)                                          the same, starting at a whole escape
 *
 * An unanchored pattern starts at a whole escape too (`(?<!%[0-9A-F]?)`), so `A` does not match
 * the hex digit of `%3A`. `\K` (where the reported match starts) changes nothing nginx asks, and
 * `\R` is its newline sequences. What has no exact translation (back references, \p, \X,
 * recursion, conditionals, verbs, (?x)) is refused with the reason. One pass, O(pattern length).
 */
import { regexError } from '../../config/regex-check.js';
import { byteSetSource, pathBytes } from './encoded-path.js';

/** A translated regex, or why it cannot be. */
export type PathRegexResult = { readonly source: string } | { readonly error: string };

interface Flags {
  readonly caseless: boolean;
  readonly dotAll: boolean;
  readonly multiline: boolean;
}

/** A piece of output that a quantifier may follow. */
interface Atom {
  readonly text: string;
  /** One JS atom: quantifiable as it is. */
  readonly single: boolean;
  /** Zero-width: PCRE may quantify it, JavaScript may not. */
  readonly assertion?: true;
}

/** A zero-width piece of output. */
function assertion(text: string): Atom {
  return { text, single: false, assertion: true };
}

class Refused extends Error {}

const MAX_GROUP_DEPTH = 200;

const WORD = '[A-Za-z0-9_]';
/** The previous byte is a raw word character, not the hex digit of an escape. */
const WORD_BEFORE = `(?<=${WORD})(?<!%[0-9A-F]{2})`;
const NOT_WORD_BEFORE = `(?:(?<!${WORD})|(?<=%[0-9A-F]{2}))`;
/** Not inside an escape: a match may start here. */
const WHOLE = '(?<!%[0-9A-F]?)';

/** Translates a location regex; `caseless` for `~*`. */
export function translatePathRegex(pcre: string, caseless: boolean): PathRegexResult {
  try {
    const parser = new Parser(pathBytes(pcre));
    const body = parser.alternation({ caseless, dotAll: false, multiline: false }, 0);
    if (parser.more()) throw new Refused('a ")" closes no group');
    const source = parser.anchored ? body : `${WHOLE}${body.includes('|') ? `(?:${body})` : body}`;
    const error = regexError(source);
    return error === undefined ? { source } : { error };
  } catch (err) {
    if (err instanceof Refused) return { error: err.message };
    throw err;
  }
}

class Parser {
  readonly #p: readonly number[];
  #i = 0;
  #atomic = 0;
  /** Whether the whole pattern starts with ^ (or \A): no match starts inside an escape then. */
  anchored = false;

  constructor(bytes: readonly number[]) {
    this.#p = bytes;
  }

  more(): boolean {
    return this.#i < this.#p.length;
  }

  #peek(offset = 0): number | undefined {
    return this.#p[this.#i + offset];
  }

  #char(offset = 0): string {
    const b = this.#peek(offset);
    return b === undefined ? '' : String.fromCharCode(b);
  }

  #startsWith(text: string): boolean {
    for (let k = 0; k < text.length; k++) if (this.#char(k) !== text[k]) return false;
    return true;
  }

  /** `a|b|c` up to a `)` (not consumed) or the end. */
  alternation(flags: Flags, depth: number): string {
    // The parser recurses per group: a pattern of thousands of nested groups would exhaust the stack.
    if (depth > MAX_GROUP_DEPTH) throw new Refused(`groups nested more than ${MAX_GROUP_DEPTH} deep`);
    const branches: string[] = [];
    let current = flags;
    for (;;) {
      const branch = this.#sequence(current, depth, branches.length === 0);
      branches.push(branch.text);
      // An inline (?i) holds to the end of its group, across its later branches too.
      current = branch.flags;
      if (this.#char() !== '|') break;
      this.#i++;
      if (depth === 0) this.anchored = false;
    }
    return branches.join('|');
  }

  #sequence(start: Flags, depth: number, first: boolean): { text: string; flags: Flags } {
    let flags = start;
    const atoms: Atom[] = [];
    while (this.more()) {
      const c = this.#char();
      if (c === '|' || c === ')') break;
      if (c === '(') {
        const g = this.#group(flags, depth);
        if (g.flags !== undefined) {
          flags = g.flags;
          continue;
        }
        if (g.atom !== undefined) atoms.push(g.atom);
      } else if (c === '[') atoms.push(this.#class(flags));
      else if (c === '\\') {
        for (const a of this.#escape(flags, depth, first && atoms.length === 0)) atoms.push(a);
      } else if (c === '.') {
        this.#i++;
        atoms.push(byteSetSource(flags.dotAll ? ALL : NOT_NEWLINE));
      } else if (c === '^') {
        this.#i++;
        if (depth === 0 && first && atoms.length === 0 && !flags.multiline) this.anchored = true;
        atoms.push(assertion(flags.multiline ? '(?:^|(?<=%0A))' : '^'));
      } else if (c === '$') {
        this.#i++;
        atoms.push(assertion(flags.multiline ? '(?=%0A|$)' : this.#end(depth)));
      } else if (c === '*' || c === '+' || c === '?' || (c === '{' && this.#counted() !== null)) {
        throw new Refused(`the quantifier ${c} follows nothing`);
      } else {
        this.#i++;
        atoms.push(byteSetSource(letterSet(this.#p[this.#i - 1]!, flags.caseless)));
      }
      this.#quantifier(atoms);
    }
    return { text: atoms.map((a) => a.text).join(''), flags };
  }

  /** `$`: at the end, or before a final newline (%0A), as PCRE's. */
  #end(depth: number): string {
    // Last in the pattern: nothing follows to need a zero-width form.
    return depth === 0 && !this.more() ? '(?:%0A)?$' : '(?=(?:%0A)?$)';
  }

  /** `{n}`, `{n,}`, `{n,m}` at the cursor, as written; `null` when `{` is a literal there. */
  #counted(): string | null {
    let k = 0;
    let text = '';
    while (this.#peek(k) !== undefined && this.#char(k) !== '}') {
      text += this.#char(k);
      k++;
      if (k > 24) return null;
    }
    if (this.#char(k) !== '}') return null;
    text += '}';
    return /^\{\d+(,\d*)?\}$/.test(text) ? text : null;
  }

  /** Applies a quantifier at the cursor to the last atom. */
  #quantifier(atoms: Atom[]): void {
    const c = this.#char();
    let q: string;
    if (c === '*' || c === '+' || c === '?') {
      q = c;
      this.#i++;
    } else if (c === '{') {
      const counted = this.#counted();
      if (counted === null) return;
      q = counted;
      this.#i += counted.length;
    } else return;
    const last = atoms.pop();
    if (last === undefined) throw new Refused(`the quantifier ${q} follows nothing`);
    if (last.assertion) {
      // A quantified assertion: PCRE allows it, and it means the assertion or nothing.
      throw new Refused(`the quantifier ${q} on an assertion has no JavaScript equivalent`);
    }
    const base = last.single ? last.text : `(?:${last.text})`;
    let text = `${base}${q}`;
    if (this.#char() === '?') {
      text += '?';
      this.#i++;
    } else if (this.#char() === '+') {
      // Possessive: an atomic group around the quantified atom.
      this.#i++;
      text = this.#atomicOf(text);
    }
    atoms.push({ text, single: false });
  }

  #atomicOf(inner: string): string {
    const name = `atomic${++this.#atomic}`;
    return `(?:(?=(?<${name}>${inner}))\\k<${name}>)`;
  }

  /** A group at `(`; returns the flags after it for a bare `(?i)` (or a comment), else the group as an atom. */
  #group(flags: Flags, depth: number): { atom?: Atom; flags?: Flags } {
    this.#i++;
    const inner = (open: string, close: string, innerFlags = flags, prefix = ''): Atom => {
      const body = this.alternation(innerFlags, depth + 1);
      if (this.#char() !== ')') throw new Refused('a "(" is not closed');
      this.#i++;
      return { text: `${open}${prefix}${body}${close}`, single: true };
    };
    if (this.#char() !== '?') {
      if (this.#char() === '*') throw new Refused('PCRE verbs such as (*SKIP) have no JavaScript equivalent');
      return { atom: inner('(', ')') };
    }
    this.#i++;
    const rest = (): string => {
      let s = '';
      for (let k = 0; k < 40 && this.#peek(k) !== undefined; k++) s += this.#char(k);
      return s;
    };
    const r = rest();
    if (r.startsWith('#')) {
      const close = r.indexOf(')');
      if (close === -1) throw new Refused('a (?# comment is not closed');
      this.#i += close + 1;
      return { flags };
    }
    if (r.startsWith(':')) {
      this.#i++;
      return { atom: inner('(?:', ')') };
    }
    if (r.startsWith('=') || r.startsWith('!')) {
      this.#i++;
      return { atom: assertion(inner(`(?${r[0]}`, ')').text) };
    }
    if (r.startsWith('<=') || r.startsWith('<!')) {
      this.#i += 2;
      // The looked-behind text must start at a whole escape, not at its hex digits.
      return { atom: assertion(inner(`(?${r.slice(0, 2)}`, ')', flags, WHOLE).text) };
    }
    if (r.startsWith('>')) {
      this.#i++;
      const body = inner('', '');
      return { atom: { text: this.#atomicOf(body.text), single: true } };
    }
    const named = /^(?:P<|<|')([A-Za-z_]\w*)[>']/.exec(r);
    if (named) {
      this.#i += named[0].length;
      return { atom: inner(`(?<${named[1]}>`, ')') };
    }
    const setting = /^([imsx]*)(?:-([imsx]*))?([:)])/.exec(r);
    if (setting) {
      this.#i += setting[0].length;
      const on = setting[1]!;
      const off = setting[2] ?? '';
      if ((on + off).includes('x')) throw new Refused('the (?x) flag has no JavaScript equivalent');
      const next: Flags = {
        caseless: on.includes('i') ? true : off.includes('i') ? false : flags.caseless,
        dotAll: on.includes('s') ? true : off.includes('s') ? false : flags.dotAll,
        multiline: on.includes('m') ? true : off.includes('m') ? false : flags.multiline,
      };
      if (setting[3] === ')') return { flags: next };
      const body = this.alternation(next, depth + 1);
      if (this.#char() !== ')') throw new Refused('a "(" is not closed');
      this.#i++;
      return { atom: { text: `(?:${body})`, single: true } };
    }
    throw new Refused(
      `the group ${JSON.stringify(`(?${r.slice(0, 3)}`)}... (back reference, recursion, condition or branch reset) has no JavaScript equivalent`,
    );
  }

  /** The atoms of an escape at `\`: none for `\E`, one a byte for `\Q...\E`. */
  #escape(flags: Flags, depth: number, leading: boolean): Atom[] {
    this.#i++;
    const c = this.#char();
    if (c === '') throw new Refused('the pattern ends with a lone backslash');
    const set = this.#classEscape(c);
    if (set !== null) {
      this.#i++;
      return [byteSetSource(set)];
    }
    const word = `(?=${WORD})`;
    const notWord = `(?!${WORD})`;
    switch (c) {
      case 'A':
      case 'G':
        this.#i++;
        // nginx matches from the start of the path: \G is where the match began, \A the start.
        if (depth === 0 && leading) this.anchored = true;
        return [assertion('^')];
      case 'z':
        this.#i++;
        return [assertion('$')];
      case 'Z':
        this.#i++;
        return [assertion(this.#end(depth))];
      case 'b':
        this.#i++;
        return [assertion(`(?:${WORD_BEFORE}${notWord}|${NOT_WORD_BEFORE}${word})`)];
      case 'B':
        this.#i++;
        return [assertion(`(?:${WORD_BEFORE}${word}|${NOT_WORD_BEFORE}${notWord})`)];
      case 'Q': {
        // Literal bytes up to \E; a quantifier after it takes the last one, as in PCRE.
        this.#i++;
        const atoms: Atom[] = [];
        while (this.more() && !this.#startsWith('\\E')) {
          atoms.push(byteSetSource(letterSet(this.#p[this.#i]!, flags.caseless)));
          this.#i++;
        }
        if (this.more()) this.#i += 2;
        return atoms;
      }
      case 'E':
        this.#i++;
        return [];
      case 'K':
        // Where the reported match starts; nginx asks whether it matches (and for captures).
        this.#i++;
        return [];
      case 'R': {
        // Any newline sequence, CRLF taken whole (PCRE makes \R atomic).
        this.#i++;
        const one = (b: number): string => byteSetSource(new Set([b])).text;
        const crlf = `${one(0x0d)}${one(0x0a)}`;
        const alternatives = [crlf, ...[0x0a, 0x0b, 0x0c, 0x0d, 0x85].map(one)].join('|');
        return [{ text: this.#atomicOf(alternatives), single: true }];
      }
      default:
        return [byteSetSource(letterSet(this.#literalEscape(c), flags.caseless))];
    }
  }

  /** The byte of a literal escape at the cursor (`\x41`, `\n`, `\.`), consumed. */
  #literalEscape(c: string): number {
    const simple: Readonly<Record<string, number>> = { n: 0x0a, t: 0x09, r: 0x0d, f: 0x0c, e: 0x1b, a: 0x07 };
    if (simple[c] !== undefined) {
      this.#i++;
      return simple[c]!;
    }
    if (c === 'x') {
      this.#i++;
      if (this.#char() === '{') {
        let k = 1;
        let digits = '';
        while (/[0-9a-fA-F]/.test(this.#char(k))) digits += this.#char(k++);
        if (this.#char(k) !== '}' || digits === '') throw new Refused('a \\x{...} escape is not closed');
        this.#i += k + 1;
        const v = Number.parseInt(digits, 16);
        if (v > 0xff) throw new Refused(`\\x{${digits}} is not a byte (nginx matches bytes)`);
        return v;
      }
      let digits = '';
      while (digits.length < 2 && /[0-9a-fA-F]/.test(this.#char())) {
        digits += this.#char();
        this.#i++;
      }
      return digits === '' ? 0 : Number.parseInt(digits, 16);
    }
    if (c === 'c') {
      const x = this.#char(1);
      if (x === '') throw new Refused('\\c ends the pattern');
      this.#i += 2;
      return x.toUpperCase().charCodeAt(0) ^ 0x40;
    }
    if (c === '0') {
      let digits = '';
      this.#i++;
      while (digits.length < 2 && /[0-7]/.test(this.#char())) {
        digits += this.#char();
        this.#i++;
      }
      return digits === '' ? 0 : Number.parseInt(digits, 8);
    }
    if (/[1-9gk]/.test(c))
      throw new Refused(`the back reference \\${c} has no exact equivalent over escaped paths`);
    if (/[A-Za-z0-9]/.test(c)) {
      throw new Refused(`\\${c} (${UNSUPPORTED[c] ?? 'unknown escape'}) has no JavaScript equivalent`);
    }
    // Any other escaped byte (a non-ASCII one included) is itself.
    this.#i++;
    return this.#p[this.#i - 1]!;
  }

  /** The byte set of a class escape (`\d`, `\s`, ...) at the cursor, not consumed; `null` for others. */
  #classEscape(c: string): Set<number> | null {
    switch (c) {
      case 'd':
        return DIGIT;
      case 'D':
        return complement(DIGIT);
      case 'w':
        return WORD_SET;
      case 'W':
        return complement(WORD_SET);
      case 's':
        return SPACE;
      case 'S':
        return complement(SPACE);
      case 'h':
        return HSPACE;
      case 'H':
        return complement(HSPACE);
      case 'v':
        return VSPACE;
      case 'V':
        return complement(VSPACE);
      case 'N':
        return NOT_NEWLINE;
      default:
        return null;
    }
  }

  /** A class `[...]` at the cursor, as the set of bytes it matches. */
  #class(flags: Flags): Atom {
    this.#i++;
    let negated = false;
    if (this.#char() === '^') {
      negated = true;
      this.#i++;
    }
    const set = new Set<number>();
    let first = true;
    while (this.more() && (this.#char() !== ']' || first)) {
      first = false;
      if (this.#startsWith('[:')) {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(this.#restText(16));
        const posix = m === null ? undefined : POSIX[m[2]!];
        if (m === null || posix === undefined) throw new Refused('an unknown POSIX class [:...:]');
        for (const b of m[1] === '^' ? complement(posix) : posix) set.add(b);
        this.#i += m[0].length;
        continue;
      }
      const low = this.#classAtom();
      if (typeof low !== 'number') {
        for (const b of low) set.add(b);
        continue;
      }
      if (this.#char() === '-' && this.#peek(1) !== undefined && this.#char(1) !== ']') {
        this.#i++;
        const high = this.#classAtom();
        if (typeof high !== 'number') {
          // `[a-\d]`: PCRE reads the "-" as a literal.
          set.add(low);
          set.add(0x2d);
          for (const b of high) set.add(b);
          continue;
        }
        if (high < low) throw new Refused('a class range is out of order');
        for (let b = low; b <= high; b++) set.add(b);
        continue;
      }
      set.add(low);
    }
    if (this.#char() !== ']') throw new Refused('a character class "[" is not closed');
    this.#i++;
    let out = flags.caseless ? fold(set) : set;
    if (negated) out = complement(out);
    return byteSetSource(out);
  }

  #restText(n: number): string {
    let s = '';
    for (let k = 0; k < n && this.#peek(k) !== undefined; k++) s += this.#char(k);
    return s;
  }

  /** One byte or a class escape's set, inside `[...]`. */
  #classAtom(): number | Set<number> {
    if (this.#char() !== '\\') {
      this.#i++;
      return this.#p[this.#i - 1]!;
    }
    this.#i++;
    const c = this.#char();
    if (c === '') throw new Refused('the pattern ends with a lone backslash');
    if (c === 'b') {
      this.#i++;
      return 0x08;
    }
    if (c === 'N' || c === 'Q' || c === 'E')
      throw new Refused(`\\${c} inside a class has no JavaScript equivalent`);
    const set = this.#classEscape(c);
    if (set !== null) {
      this.#i++;
      return set;
    }
    return this.#literalEscape(c);
  }
}

const UNSUPPORTED: Readonly<Record<string, string>> = {
  X: 'extended grapheme',
  C: 'one code unit',
  p: 'Unicode property',
  P: 'Unicode property',
  o: 'octal',
};

function byteRange(from: number, to: number): Set<number> {
  const s = new Set<number>();
  for (let b = from; b <= to; b++) s.add(b);
  return s;
}

function union(...sets: ReadonlySet<number>[]): Set<number> {
  const out = new Set<number>();
  for (const s of sets) for (const b of s) out.add(b);
  return out;
}

function complement(set: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  for (let b = 0; b <= 255; b++) if (!set.has(b)) out.add(b);
  return out;
}

/** ASCII letters in both cases, as PCRE folds them outside UTF mode. */
function fold(set: ReadonlySet<number>): Set<number> {
  const out = new Set(set);
  for (const b of set) {
    if (b >= 0x41 && b <= 0x5a) out.add(b + 0x20);
    else if (b >= 0x61 && b <= 0x7a) out.add(b - 0x20);
  }
  return out;
}

function letterSet(b: number, caseless: boolean): Set<number> {
  const s = new Set([b]);
  return caseless ? fold(s) : s;
}

const ALL = byteRange(0, 255);
const NOT_NEWLINE = complement(new Set([0x0a]));
const DIGIT = byteRange(0x30, 0x39);
const UPPER = byteRange(0x41, 0x5a);
const LOWER = byteRange(0x61, 0x7a);
const ALPHA = union(UPPER, LOWER);
const WORD_SET = union(ALPHA, DIGIT, new Set([0x5f]));
/** PCRE2's \s outside UCP: space, \t, \n, \v, \f, \r. */
const SPACE = union(byteRange(0x09, 0x0d), new Set([0x20]));
const HSPACE = new Set([0x09, 0x20, 0xa0]);
const VSPACE = union(byteRange(0x0a, 0x0d), new Set([0x85]));
const PUNCT = union(
  byteRange(0x21, 0x2f),
  byteRange(0x3a, 0x40),
  byteRange(0x5b, 0x60),
  byteRange(0x7b, 0x7e),
);

/** POSIX classes as PCRE's C-locale tables have them. */
const POSIX: Readonly<Record<string, ReadonlySet<number>>> = {
  alpha: ALPHA,
  digit: DIGIT,
  alnum: union(ALPHA, DIGIT),
  upper: UPPER,
  lower: LOWER,
  space: SPACE,
  blank: new Set([0x09, 0x20]),
  punct: PUNCT,
  print: byteRange(0x20, 0x7e),
  graph: byteRange(0x21, 0x7e),
  cntrl: union(byteRange(0x00, 0x1f), new Set([0x7f])),
  xdigit: union(DIGIT, byteRange(0x41, 0x46), byteRange(0x61, 0x66)),
  word: WORD_SET,
  ascii: byteRange(0x00, 0x7f),
};
