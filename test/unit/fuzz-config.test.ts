// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the junk values include the literal ${NAME} syntax.
/**
 * Property-based tests (fast-check) of the config loader on hostile and broken input: the full
 * fixture with random values put in random places, keys dropped, renamed and wrapped; its text
 * with lines dropped, repeated, re-indented or cut; and text that is not YAML at all. The loader
 * never throws: it returns a frozen config, or problems that are well-formed (a catalogued code,
 * a position inside the file, one line each).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type ConfigResult, loadConfigText, resolveConfigObject } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { ERROR_CATALOGUE } from '../../src/errors/catalogue.js';
import { fuzzCounter } from '../helpers/reliability.js';

const fuzz = fuzzCounter(
  'fuzz-03-config',
  'Config loader: the full fixture with random values, keys and lines changed; text and objects that are not configs',
);
afterAll(() => fuzz.record());

const DIR = 'test/fixtures/config/valid';
const TEXT = readFileSync(join(DIR, 'full.yaml'), 'utf8');
const OBJECT = JSON.parse(readFileSync(join(DIR, 'full.json'), 'utf8')) as unknown;
/** Loaded as if it sat beside the fixture, so its relative paths resolve the same way. */
const FILE = join(DIR, 'fuzz.yaml');
const ENV = { SLUICE_TEST_PORT: '8081', SLUICE_TEST_USER: 'alice' };

/** Checks what the loader returned for `text` (null for a config object). */
function wellFormed(result: ConfigResult, text: string | null): void {
  if (result.ok) {
    expect(Object.isFrozen(result.config)).toBe(true);
    expect(result.config.servers.length).toBeGreaterThan(0);
    return;
  }
  expect(result.problems.length).toBeGreaterThan(0);
  const lines = text === null ? 0 : text.split('\n').length;
  for (const p of result.problems) {
    expect(Object.keys(ERROR_CATALOGUE)).toContain(p.code);
    expect(Number.isInteger(p.line) && p.line >= 0).toBe(true);
    expect(Number.isInteger(p.col) && p.col >= 0).toBe(true);
    if (text !== null) expect(p.line).toBeLessThanOrEqual(lines + 1);
    expect(p.message.length).toBeGreaterThan(0);
    expect(formatProblem(p)).not.toMatch(/[\r\n]/);
  }
}

/** Values a careless or hostile config writer puts where another belongs. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1e309',
    'NaN',
    '0s',
    '-5s',
    '10',
    '99999999999d',
    '1tb',
    '0kb',
    'auto',
    '${UNSET_VARIABLE}',
    '${SLUICE_TEST_PORT}',
    '$nope',
    '$',
    '$$',
    '~(',
    '~^a+$',
    '*',
    '*.',
    '.',
    '[::1]:0',
    '[::]:99999',
    '127.0.0.1:65536',
    ':0',
    'http://',
    'https://x:0',
    'http://a b',
    'ftp://x',
    '10.0.0.0/33',
    '::/129',
    'get',
    '399-200',
    'a'.repeat(300),
    '\u0000',
    'a\r\nb',
    'spiffe://x/y',
  ),
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -1_000_000, max: 10_000_000_000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

type Json = unknown;

/** Every path in a JSON value, root first. */
function paths(
  value: Json,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) paths(v, [...at, i], out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out);
  }
  return out;
}

/** One change to a config document. */
type Mutation = {
  readonly where: number;
  readonly op: 'replace' | 'delete' | 'rename' | 'wrap' | 'add';
  readonly value: unknown;
  readonly key: string;
};

const mutation: fc.Arbitrary<Mutation> = fc.record({
  where: fc.nat(),
  op: fc.constantFrom('replace', 'delete', 'rename', 'wrap', 'add'),
  value: junk,
  key: fc.oneof(
    fc.constantFrom('listen', 'routes', 'proxy', 'limits', 'targets', 'url', 'match'),
    fc.string({ maxLength: 8 }),
  ),
});

/** Applies `m` to a copy of `doc`. */
function mutate(doc: Json, m: Mutation): Json {
  const copy = structuredClone(doc);
  const all = paths(copy).slice(1);
  if (all.length === 0) return copy;
  const path = all[m.where % all.length]!;
  const key = path[path.length - 1]!;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  switch (m.op) {
    case 'replace':
      parent[key] = m.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 'rename':
      if (!Array.isArray(parent)) {
        parent[m.key] = parent[key];
        delete parent[key];
      }
      break;
    case 'wrap':
      parent[key] = [parent[key]];
      break;
    case 'add':
      if (typeof parent[key] === 'object' && parent[key] !== null && !Array.isArray(parent[key])) {
        (parent[key] as Record<string, unknown>)[m.key] = m.value;
      } else if (Array.isArray(parent[key])) (parent[key] as unknown[]).push(m.value);
      break;
  }
  return copy;
}

describe('loadConfigText on broken configs', () => {
  it('loads the fixture itself (control)', () => {
    expect(loadConfigText(TEXT, FILE, ENV).ok).toBe(true);
  });

  it('the fixture with random values in random places: a config or well-formed problems, never a throw', () => {
    fc.assert(
      fc.property(
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fuzz.check((mutations) => {
          const doc = mutations.reduce(mutate, OBJECT);
          const text = stringify(doc);
          wellFormed(loadConfigText(text, FILE, ENV), text);
        }),
      ),
      { numRuns: 300 },
    );
  });

  it('the fixture text with lines dropped, repeated, re-indented, cut or spliced: never a throw', () => {
    const lines = TEXT.split('\n');
    const edit = fc.record({
      line: fc.nat({ max: lines.length - 1 }),
      op: fc.constantFrom('drop', 'repeat', 'indent', 'dedent', 'cut', 'splice'),
      text: fc.oneof(
        fc.string({ maxLength: 10 }),
        fc.constantFrom(
          ':',
          '- ',
          '{',
          '[',
          '"',
          "'",
          '&a',
          '*a',
          '!!binary',
          '? ',
          '\t',
          '#',
          '---',
          '...',
          '%YAML 1.2',
        ),
      ),
      col: fc.nat({ max: 40 }),
    });
    fc.assert(
      fc.property(
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        fuzz.check((edits) => {
          let out = [...lines];
          for (const e of edits) {
            const i = e.line % out.length;
            const l = out[i]!;
            if (e.op === 'drop') out.splice(i, 1);
            else if (e.op === 'repeat') out.splice(i, 0, l);
            else if (e.op === 'indent') out[i] = `  ${l}`;
            else if (e.op === 'dedent') out[i] = l.replace(/^ {1,2}/, '');
            else if (e.op === 'cut') out = out.slice(0, i);
            else out[i] = l.slice(0, e.col) + e.text + l.slice(e.col);
            if (out.length === 0) out = [''];
          }
          const text = out.join('\n');
          wellFormed(loadConfigText(text, FILE, ENV), text);
        }),
      ),
      { numRuns: 400 },
    );
  });

  it('text that is not a config at all: never a throw', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ unit: 'binary', maxLength: 100 }),
          fc.json(),
          fc.stringMatching(/^[ \n:\-[\]{}"',#&*!|>%@`a-z0-9]{0,80}$/),
        ),
        fuzz.check((text) => {
          wellFormed(loadConfigText(text, FILE, ENV), text);
        }),
      ),
      { numRuns: 500 },
    );
  });
});

describe('resolveConfigObject on broken config objects', () => {
  it('the fixture object with random values in random places: a config or well-formed problems', () => {
    fc.assert(
      fc.property(
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fuzz.check((mutations) => {
          wellFormed(resolveConfigObject(mutations.reduce(mutate, OBJECT), FILE), null);
        }),
      ),
      { numRuns: 300 },
    );
  });

  it('any JSON value at all: never a throw', () => {
    fc.assert(
      fc.property(
        fc.anything({ maxDepth: 3 }),
        fuzz.check((value) => {
          wellFormed(resolveConfigObject(value), null);
        }),
      ),
      { numRuns: 300 },
    );
  });
});
