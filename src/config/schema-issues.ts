/**
 * Zod issues turned into config problems: YAML words (list, mapping), the offending value shown,
 * one problem per unknown key at the key itself with a "did you mean", and a missing key at the
 * mapping that lacks it.
 */
import type { z } from 'zod';
import { didYouMean } from '../core/did-you-mean.js';
import { formatDuration, MAX_TIMER_MS } from '../core/duration.js';
import { formatSize } from '../core/size.js';
import { ERROR_CATALOGUE } from '../errors/catalogue.js';
import { isMapping, type KeyPath, valueAtPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';
import {
  banDurationSchema,
  durationSchema,
  headerSizeSchema,
  isSizeSchema,
  MAX_BAN_DURATION_MS,
  MAX_HEADER_BYTES,
  MAX_SIZE_BYTES,
} from './schema.js';
import { allowedKeys, schemaAt, unwrapSchema } from './schema-walk.js';

type Issue = z.core.$ZodIssue;

/** Reports each issue of a failed schema check against `input`, as rejected nodes. */
export function reportSchemaIssues(
  issues: readonly Issue[],
  input: unknown,
  root: z.ZodType,
  problems: ProblemCollector,
): void {
  for (const issue of withoutLooserBounds(issues)) reportIssue(issue, [], input, root, problems);
}

/**
 * Drops a range issue when another at the same path bounds tighter: zod's int() adds its own
 * safe-integer maximum, and `workers: 99999999999999999999` was told both "at most
 * 9007199254740991" and "at most 1024", at one place.
 */
function withoutLooserBounds(issues: readonly Issue[]): readonly Issue[] {
  const bound = (i: Issue): number | null =>
    i.code === 'too_big' ? Number(i.maximum) : i.code === 'too_small' ? -Number(i.minimum) : null;
  const key = (i: Issue): string => `${i.code} ${i.path.map(String).join('.')}`;
  const tightest = new Map<string, number>();
  for (const i of issues) {
    const b = bound(i);
    if (b !== null) tightest.set(key(i), Math.min(b, tightest.get(key(i)) ?? Number.POSITIVE_INFINITY));
  }
  if (tightest.size === 0) return issues;
  return issues.filter((i) => {
    const b = bound(i);
    return b === null || b === tightest.get(key(i));
  });
}

function reportIssue(
  issue: Issue,
  base: KeyPath,
  input: unknown,
  root: z.ZodType,
  problems: ProblemCollector,
): void {
  const path: KeyPath = [...base, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  const here = valueAtPath(input, path);

  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeys(schemaAt(root, path));
    for (const key of issue.keys) {
      const guess = didYouMean(key, allowed);
      const message = `unknown key ${JSON.stringify(key)}${guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`}`;
      problems.reject([...path, key], 'SLUICE_E_CONFIG_UNKNOWN_KEY', message, {
        at: 'key',
        hint: `remove the key or correct its spelling; allowed here: ${allowed.join(', ')}`,
      });
    }
    return;
  }

  if (!here.found && path.length > 0) {
    // A required key that is absent: point at the mapping that should hold it.
    const parentPath = path.slice(0, -1);
    const parent = valueAtPath(input, parentPath);
    if (parent.found && isMapping(parent.value)) {
      const key = String(path[path.length - 1]);
      problems.reject(
        parentPath,
        'SLUICE_E_CONFIG_MISSING_KEY',
        `missing required key ${JSON.stringify(key)}`,
        {
          rejects: path,
        },
      );
      return;
    }
  }

  const value = here.value;
  switch (issue.code) {
    case 'invalid_type': {
      const target = schemaAt(root, path);
      const unit = target === undefined ? undefined : unwrapSchema(target);
      if (isDurationSchema(unit)) {
        problems.reject(
          path,
          'SLUICE_E_CONFIG_DURATION',
          `expected a duration such as "10s", got ${kindOf(value)}`,
        );
      } else if (isSizeSchema(unit)) {
        problems.reject(path, 'SLUICE_E_CONFIG_SIZE', `expected a size such as "16kb", got ${kindOf(value)}`);
      } else {
        problems.reject(
          path,
          'SLUICE_E_CONFIG_TYPE',
          `expected ${expectedWords(issue.expected)}, got ${kindOf(value)}`,
        );
      }
      return;
    }
    case 'invalid_format': {
      const target = schemaAt(root, path);
      const unit = target === undefined ? undefined : unwrapSchema(target);
      if (isDurationSchema(unit)) {
        problems.reject(path, 'SLUICE_E_CONFIG_DURATION', `${showValue(value)} is not a duration`);
      } else if (isSizeSchema(unit)) {
        problems.reject(path, 'SLUICE_E_CONFIG_SIZE', `${showValue(value)} is not a size`);
      } else if (issue.message.startsWith('Invalid')) {
        problems.reject(path, 'SLUICE_E_CONFIG_VALUE', `${showValue(value)} has the wrong format`);
      } else {
        // The schema's own words for the pattern ("expected a rate such as 100/s, ...").
        problems.reject(path, 'SLUICE_E_CONFIG_VALUE', `${issue.message}, got ${showValue(value)}`, {
          hint: 'write the value in the form the message shows',
        });
      }
      return;
    }
    case 'invalid_value': {
      if (path.length === 1 && path[0] === 'version') {
        problems.reject(
          path,
          'SLUICE_E_CONFIG_VERSION',
          `unsupported version ${showValue(value)}; this sluice reads version 1`,
        );
        return;
      }
      const choices = issue.values.map((v) => JSON.stringify(v));
      const expected = choices.length === 1 ? choices[0] : `one of ${choices.join(', ')}`;
      const guess = typeof value === 'string' ? choiceGuess(value, issue.values) : undefined;
      const suggestion = guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`;
      problems.reject(
        path,
        'SLUICE_E_CONFIG_VALUE',
        `expected ${expected}, got ${showValue(value)}${suggestion}`,
        { hint: LISTED_HINT },
      );
      return;
    }
    case 'too_small':
    case 'too_big':
      problems.reject(path, 'SLUICE_E_CONFIG_VALUE', rangeMessage(issue, value), {
        hint:
          issue.origin === 'array'
            ? 'add the entries the message asks for'
            : 'use a value within the range shown',
      });
      return;
    case 'invalid_union': {
      // When one option took the value's shape and failed only deeper down (a list with one bad
      // entry), its issues say more than "expected a string or a list".
      const deeper = issue.errors.find((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0));
      if (deeper !== undefined) {
        for (const e of deeper) reportIssue(e, path, input, root, problems);
        return;
      }
      const valueOnly =
        issue.errors.length > 0 &&
        issue.errors.every((errs) =>
          errs.every((e) => ['invalid_value', 'too_small', 'too_big'].includes(e.code)),
        );
      const got = valueOnly ? showValue(value) : kindOf(value);
      problems.reject(
        path,
        valueOnly ? 'SLUICE_E_CONFIG_VALUE' : 'SLUICE_E_CONFIG_TYPE',
        `${issue.message}, got ${got}`,
        // The union's own message lists what it takes ("expected a redirect status: 301, ...").
        valueOnly ? { hint: LISTED_HINT } : {},
      );
      return;
    }
    case 'custom': {
      const target = schemaAt(root, path);
      const unit = target === undefined ? undefined : unwrapSchema(target);
      if (isDurationSchema(unit)) {
        problems.reject(
          path,
          'SLUICE_E_CONFIG_DURATION',
          `${showValue(value)} is too long: ${issue.message}`,
          {
            hint: unit === banDurationSchema ? LONG_BAN_HINT : LONG_TIMER_HINT,
          },
        );
        return;
      }
      if (isSizeSchema(unit)) {
        problems.reject(path, 'SLUICE_E_CONFIG_SIZE', `${showValue(value)} is too large: ${issue.message}`, {
          hint: unit === headerSizeSchema ? LARGE_HEADER_HINT : LARGE_SIZE_HINT,
        });
        return;
      }
      problems.reject(path, 'SLUICE_E_CONFIG_VALUE', `${issue.message} (got ${showValue(value)})`);
      return;
    }
    default:
      problems.reject(path, 'SLUICE_E_CONFIG_VALUE', `${issue.message} (got ${showValue(value)})`, {
        hint: ERROR_CATALOGUE.SLUICE_E_CONFIG_VALUE.hint,
      });
  }
}

const LONG_TIMER_HINT = `a duration arms a timer, and a timer holds at most ${MAX_TIMER_MS} ms (24.8 days): beyond that it would fire at once; write 24d or less`;
const LARGE_SIZE_HINT = `write ${formatSize(MAX_SIZE_BYTES)} or less`;
const LARGE_HEADER_HINT = `a request head is held in memory whole; nginx reads at most 4 header lines of 8k each; write ${formatSize(MAX_HEADER_BYTES)} or less`;
const LONG_BAN_HINT = `write ${formatDuration(MAX_BAN_DURATION_MS)} or less`;

function isDurationSchema(unit: z.ZodType | undefined): boolean {
  return unit === durationSchema || unit === banDurationSchema;
}

/**
 * The choice `value` is likely a typo of (`roundrobin` → `round_robin`), if any. Another number is
 * no typo: `http_418` is not taken for `http_429`.
 */
function choiceGuess(value: string, choices: readonly unknown[]): string | undefined {
  const words = choices.filter((c): c is string => typeof c === 'string');
  const guess = didYouMean(value, words);
  const digits = (text: string) => text.replace(/\D/g, '');
  return guess !== undefined && digits(guess) === digits(value) ? guess : undefined;
}

/** For a message that lists the values a key takes. */
const LISTED_HINT = 'use one of the values listed in the message';

function rangeMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, value: unknown): string {
  const small = issue.code === 'too_small';
  const bound = Number(
    small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum,
  );
  const inclusive = issue.inclusive !== false;
  if (issue.origin === 'array') {
    if (small && bound <= 1) return 'must not be empty: give at least one entry';
    return `must have ${small ? 'at least' : 'at most'} ${bound} entries, got ${Array.isArray(value) ? value.length : 0}`;
  }
  if (issue.origin === 'string') {
    return `must be ${small ? 'at least' : 'at most'} ${bound} characters long`;
  }
  const word = small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
  return `must be ${word} ${bound}, got ${showValue(value)}`;
}

const EXPECTED_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  null: 'nothing',
};

function expectedWords(expected: string): string {
  return EXPECTED_WORDS[expected] ?? expected;
}

/** A value as a message shows it: its YAML kind, and scalars quoted (shortened past 60 chars). */
function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}

/** A value's YAML kind with the value itself: `a string ("10")`, `a number (10)`, `a list`. */
function kindOf(value: unknown): string {
  if (typeof value === 'string') return `a string (${showValue(value)})`;
  if (typeof value === 'number')
    return Number.isInteger(value) ? `a number (${value})` : `a fraction (${value})`;
  if (typeof value === 'boolean') return `a boolean (${value})`;
  return showValue(value);
}
