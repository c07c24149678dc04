/** nginx `location` arguments → what the location matches: `= /x`, `^~ /x`, `~ re`, `~* re`, `/x`, `@name`. */
import type { NginxDirective } from './ast.js';
import { NginxSyntaxError } from './nginx-syntax-error.js';

/** What a location matches. `caret` is `^~`: a prefix that, when longest, stops the regex checks. */
export interface LocationMatch {
  readonly kind: 'exact' | 'prefix' | 'caret' | 'regex' | 'named';
  /** The path, prefix or regex; a named location's name with its `@`. */
  readonly path: string;
  /** `~*`: the regex ignores case. */
  readonly caseless: boolean;
}

const MODIFIERS: Readonly<Record<string, { kind: LocationMatch['kind']; caseless: boolean }>> = {
  '=': { kind: 'exact', caseless: false },
  '^~': { kind: 'caret', caseless: false },
  '~': { kind: 'regex', caseless: false },
  '~*': { kind: 'regex', caseless: true },
};

/** Reads the arguments of a `location`, in nginx's spellings (the modifier may be joined: `=/x`). */
export function parseLocation(d: NginxDirective): LocationMatch {
  const fail = (message: string): never => {
    throw new NginxSyntaxError(d.file, d.line, d.col, message);
  };
  if (d.args.length === 2) {
    const modifier = MODIFIERS[d.args[0]!];
    if (modifier === undefined) return fail(`invalid location modifier ${JSON.stringify(d.args[0])}`);
    return { ...modifier, path: d.args[1]! };
  }
  if (d.args.length !== 1) return fail('invalid number of arguments in "location" directive');
  const arg = d.args[0]!;
  // Longest modifier first, so "~*x" is not read as "~" and "*x".
  for (const m of ['^~', '~*', '=', '~']) {
    if (arg.startsWith(m) && arg.length > m.length) return { ...MODIFIERS[m]!, path: arg.slice(m.length) };
  }
  if (arg in MODIFIERS) return fail(`location ${arg} needs a path`);
  if (arg.startsWith('@')) return { kind: 'named', path: arg, caseless: false };
  return { kind: 'prefix', path: arg, caseless: false };
}
