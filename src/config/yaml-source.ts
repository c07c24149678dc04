/**
 * The YAML side of config loading (the one module that imports `yaml`): parse with node
 * positions, report syntax errors, repeated keys and bad aliases, and locate any key path afterwards.
 *
 *   text ─▶ depth (lexer) ─▶ parseDocument (LineCounter) ─▶ syntax problems ─▶ repeated keys
 *                                   │                    ─▶ aliases inlined ─▶ plain data
 *                                   └──────────────▶ locator: key path ─▶ node ─▶ line:col
 */
import {
  CST,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { formatKeyPath, type KeyPath } from './key-path.js';
import type { ConfigProblem } from './problem.js';
import type { SourceLocator, SourcePosition } from './source-locator.js';

/** A parsed YAML config: its data, its syntax problems, and a way back to positions. */
export interface YamlSource {
  /** The document as plain data; `undefined` when syntax errors make it meaningless. */
  readonly value: unknown;
  /** Syntax problems and repeated keys, positioned, in document order. */
  readonly problems: readonly ConfigProblem[];
  readonly locator: SourceLocator;
  /** Whether the node at `path` is an unquoted scalar (`${PORT}` there may become a number). */
  isPlainScalar(path: KeyPath): boolean;
}

/** An AST node as far as locating needs it. */
type AnyNode = unknown;

/**
 * Parses YAML text, keeping node positions; `file` is used as given in every problem. A file
 * nested more than MAX_DEPTH levels is refused before parsing, and whatever the parser throws is
 * a syntax problem too (a stack overflow ended `sluice check` with exit 1, not a config problem).
 */
export function parseYamlSource(text: string, file: string): YamlSource {
  try {
    return parseChecked(text, file);
  } catch (err) {
    // No position: whatever the parser threw has none.
    const problem = positioned(file, { line: 1, col: 1 }, 'SLUICE_E_CONFIG_SYNTAX', thrownText(err));
    return unreadable(file, isStackOverflow(err) ? { ...problem, hint: TOO_DEEP_HINT } : problem);
  }
}

function parseChecked(text: string, file: string): YamlSource {
  const deep = tooDeepAt(text);
  if (deep !== undefined) return tooDeep(file, text, deep);
  // uniqueKeys is off because repeated keys are found below with their key path and both lines;
  // merge keys (`<<: *defaults`) are on because YAML users reach for them to share route blocks.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, merge: true });
  const lineCounter = lineStarts(text);
  const position = (offset: number): { line: number; col: number } => lineCounter.linePos(offset);

  const problems: ConfigProblem[] = [];
  for (const err of withoutFollowOns(text, [...doc.errors, ...doc.warnings])) {
    problems.push(syntaxProblem(err, text, file, position));
  }
  const keys = keyProblems(doc, file, position);
  // A key that is a list or mapping has no JavaScript form (toJS would stringify it and print a
  // process warning), nor has `__proto__`, so they stop loading like a syntax error; a repeated
  // key does not.
  const fatal = problems.length > 0 || keys.some((p) => p.code === 'SLUICE_E_CONFIG_SYNTAX');
  problems.push(...keys);

  let value: unknown;
  if (!fatal) {
    const aliases = inlineAliases(doc, file, position);
    problems.push(...aliases.problems);
    if (aliases.problems.length === 0) {
      try {
        // No alias is left to count: inlineAliases bounded what they add.
        value = aliases.doc.toJS({ maxAliasCount: -1 });
      } catch (err) {
        problems.push(
          positioned(file, { line: 1, col: 1 }, 'SLUICE_E_CONFIG_SYNTAX', lowerFirst(errorText(err))),
        );
      }
    }
  }

  const locator: SourceLocator = {
    file,
    locate(path, at) {
      const hit = findNode(doc, path);
      const node = at === 'key' && hit.found && hit.key !== null ? hit.key : hit.value;
      const offset = nodeOffset(node) ?? nodeOffset(hit.key) ?? 0;
      return { ...position(offset), order: offset } satisfies SourcePosition;
    },
  };

  return {
    value,
    problems: problems.sort((a, b) => a.line - b.line || a.col - b.col),
    locator,
    isPlainScalar(path) {
      const hit = findNode(doc, path);
      return hit.found && isScalar(hit.value) && hit.value.type === 'PLAIN';
    },
  };
}

/**
 * How deep a config may nest lists and mappings: 100 levels (one uses about 10). The parser
 * recurses once a level and overflows the stack from about 1,000 levels; worse, after an overflow
 * it caught itself, parsing such a file again in the same process could abort it (V8: "RegExpCompiler
 * Allocation failed"). So depth is counted before parsing, and the parser never gets that deep.
 */
const MAX_DEPTH = 100;

/**
 * The offset of the first token nested deeper than MAX_DEPTH, counted over the lexer's tokens
 * without recursion: open `[`/`{`, plus the indentation levels of the open block lines, plus the
 * `-` and `?` indicators on the line. Close to the real depth (a list under a key at the key's own
 * indentation counts once for both). O(length).
 */
function tooDeepAt(text: string): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let indicators = 0;
  let lineStart = true;
  let indent = 0;
  let offset = 0;
  let scalarNext = false;
  for (const token of new Lexer().lex(text)) {
    const at = offset;
    // The lexer's control tokens (document, scalar and flow-error markers) are not in the text.
    if (!/^[\x02\x18\x1f]$/.test(token)) offset += token.length;
    const type = scalarNext ? 'scalar-source' : CST.tokenType(token);
    scalarNext = token === CST.SCALAR;
    if (type === 'newline' || (type === 'scalar-source' && token.endsWith('\n'))) {
      lineStart = true;
      indent = 0;
      indicators = 0;
      continue;
    }
    if (type === 'space' && lineStart) indent = token.length;
    if (type === 'space' || type === 'comment' || type === 'doc-mode' || type === 'byte-order-mark') continue;
    // A line indented deeper than the one above opens a level; when it starts with `-` (or `?`),
    // that indicator is the same level, not one more (a block list 100 deep was refused at 99).
    let opened = false;
    if (lineStart && flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1]! > indent) indents.pop();
      if (indents.length === 0 || indents[indents.length - 1]! < indent) {
        indents.push(indent);
        opened = true;
      }
    }
    lineStart = false;
    if (type === 'flow-map-start' || type === 'flow-seq-start') flow++;
    else if (type === 'flow-map-end' || type === 'flow-seq-end') flow = Math.max(0, flow - 1);
    else if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind') && !opened) indicators++;
    if (indents.length + indicators + flow > MAX_DEPTH) return at;
  }
  return undefined;
}

/**
 * Every line start of `text`, for positions. Not the parser's own LineCounter: the parser records
 * the newlines of the tokens it reads, and a token it could not place that spans lines (a plain
 * scalar running into the next line, after a bad indent) left the rest of the file counted on the
 * line before (`2:56` on a line of 21 characters).
 */
function lineStarts(text: string): LineCounter {
  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
  return lineCounter;
}

/** The problem of a file nested too deeply, at `offset`. */
function tooDeep(file: string, text: string, offset: number): YamlSource {
  const lineCounter = lineStarts(text);
  const message = `the file nests lists and mappings more than ${MAX_DEPTH} levels deep`;
  const problem = positioned(file, lineCounter.linePos(offset), 'SLUICE_E_CONFIG_SYNTAX', message);
  return unreadable(file, { ...problem, hint: TOO_DEEP_HINT });
}

/** A source the parser gave up on: one problem, no value. */
function unreadable(file: string, problem: ConfigProblem): YamlSource {
  return {
    value: undefined,
    problems: [problem],
    locator: { file, locate: () => ({ line: 1, col: 1, order: 0 }) },
    isPlainScalar: () => false,
  };
}

const STACK_OVERFLOW = /maximum call stack size exceeded/i;
const TOO_DEEP = 'the file nests lists and mappings too deeply to be read';
const TOO_DEEP_HINT =
  'a config nests a few levels deep (servers, routes, proxy, ...); write the nested lists and mappings out flatter';

/** What a thrown error says, as a problem message: a stack overflow is named as the file's depth. */
function thrownText(err: unknown): string {
  return isStackOverflow(err) ? TOO_DEEP : `the file cannot be read: ${lowerFirst(errorText(err))}`;
}

function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && STACK_OVERFLOW.test(err.message);
}

/**
 * The `${NAME}` whose `{` YAML stumbled on at `offset`: unquoted in a flow collection
 * (`{ status: ${STATUS} }`), where `{` opens a mapping; `undefined` for any other error.
 */
function flowEnvReference(text: string, offset: number): string | undefined {
  if (text[offset - 1] !== '$' || text[offset] !== '{') return undefined;
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*\}/.exec(text.slice(offset - 1))?.[0];
}

/**
 * The errors worth showing: after an unquoted `${NAME}` in a flow collection, YAML loses track
 * of the rest of the file and reports each token after it (33 lines for one `${STATUS}`), so
 * only such references are kept from the first one on.
 */
function withoutFollowOns(text: string, errors: readonly YAMLError[]): YAMLError[] {
  const refs = errors.filter((e) => flowEnvReference(text, e.pos[0]) !== undefined);
  const first = Math.min(...refs.map((e) => e.pos[0]));
  // After a break that ended the document, a `${` further on is one more token YAML could not read.
  const stream = errors.find((e) => STREAM_TOKEN.test(e.message));
  if (refs.length === 0 || (stream !== undefined && stream.pos[0] <= first))
    return withoutStreamTokens(errors);
  return errors.filter((e) => e.pos[0] < first || refs.includes(e));
}

/** What YAML says of each token it finds once its document has ended. */
const STREAM_TOKEN = / token in YAML stream/;

/**
 * Once a line's indent ends the document early (one space before the first key), YAML reports
 * every token after it as "unexpected in YAML stream": 84 problems for one space in a 19-line
 * file. The first is kept, saying how many followed; the rest are dropped.
 */
function withoutStreamTokens(errors: readonly YAMLError[]): YAMLError[] {
  const stream = errors.filter((e) => STREAM_TOKEN.test(e.message));
  if (stream.length < 2) return [...errors];
  const first = stream[0]!;
  first.message = `${first.message}; YAML read nothing from here on (${stream.length - 1} more tokens after it): look for a line indented more or less than the lines around it, here or above`;
  return errors.filter((e) => e === first || !STREAM_TOKEN.test(e.message));
}

function syntaxProblem(
  err: YAMLError,
  text: string,
  file: string,
  position: (offset: number) => { line: number; col: number },
): ConfigProblem {
  const at = position(err.pos[0]);
  const ref = flowEnvReference(text, err.pos[0]);
  if (ref !== undefined) {
    // Pointed at the `$`, where the reference is written.
    const where = position(err.pos[0] - 1);
    const message = `${ref} inside { } or [ ] must be quoted: unquoted, YAML reads its { as the start of a mapping`;
    return {
      ...positioned(file, where, 'SLUICE_E_CONFIG_SYNTAX', message),
      hint: `quote the whole value, e.g. "${ref}"; a quoted value that is only one \${NAME} still becomes a number or true/false where the key takes one`,
    };
  }
  // The composer catches a stack overflow itself and reports it at the node it was on.
  if (STACK_OVERFLOW.test(err.message)) {
    return { ...positioned(file, at, 'SLUICE_E_CONFIG_SYNTAX', TOO_DEEP), hint: TOO_DEEP_HINT };
  }
  const message =
    err.code === 'MULTIPLE_DOCS'
      ? 'only one YAML document is allowed; remove the "---" separator and what follows it'
      : lowerFirst(err.message);
  return positioned(file, at, 'SLUICE_E_CONFIG_SYNTAX', message);
}

/**
 * Keys that are lists or mappings or `__proto__`, and keys given twice in one mapping (the last
 * would silently win).
 */
function keyProblems(
  doc: Document,
  file: string,
  position: (offset: number) => { line: number; col: number },
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const visit = (node: AnyNode, path: KeyPath): void => {
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const keyNode = deref(doc, pair.key);
        if (isMap(keyNode) || isSeq(keyNode)) {
          const at = position(nodeOffset(pair.key) ?? nodeOffset(keyNode) ?? 0);
          out.push(
            positioned(file, at, 'SLUICE_E_CONFIG_SYNTAX', 'a key must be plain text, not a list or mapping'),
          );
          continue;
        }
        if (!isScalar(pair.key)) continue;
        const offset = pair.key.range?.[0] ?? 0;
        if (typeof pair.key.value === 'symbol') {
          // A merge key (`<<`): given twice, the second was silently ignored. Several mappings
          // merge as one list, `<<: [*a, *b]`.
          if (seen.has('<<')) out.push(duplicateKey(file, position, path, '<<', seen.get('<<')!, offset));
          else seen.set('<<', offset);
          continue;
        }
        const key = String(pair.key.value);
        if (key === '__proto__') {
          // In JavaScript data this key sets the object's prototype instead of adding a name: an
          // upstream so named vanished with the routes to it while `check` said ok.
          const problem = positioned(
            file,
            position(offset),
            'SLUICE_E_CONFIG_SYNTAX',
            '"__proto__" cannot be a key',
          );
          out.push({ ...problem, hint: 'choose another name' });
          continue;
        }
        const first = seen.get(key);
        if (first === undefined) seen.set(key, offset);
        else out.push(duplicateKey(file, position, path, key, first, offset));
        visit(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        visit(item, [...path, i]);
      });
    }
  };
  visit(doc.contents, []);
  return out;
}

/** A key given twice in the mapping at `path`: at `offset`, first at `first`. */
function duplicateKey(
  file: string,
  position: (offset: number) => { line: number; col: number },
  path: KeyPath,
  key: string,
  first: number,
  offset: number,
): ConfigProblem {
  const where = formatKeyPath(path);
  const message = `${where === '' ? '' : `${where}: `}key ${JSON.stringify(key)} is given twice in one mapping (first at line ${position(first).line})`;
  return positioned(file, position(offset), 'SLUICE_E_CONFIG_DUPLICATE_KEY', message);
}

/**
 * The most values aliases may add to a file: 100,000. Sharing a block is free (a 10-value proxy
 * block used by 1,000 routes adds 10,000), an alias bomb ("billion laughs": each line aliases the
 * one above ten times) stops within five lines. yaml's own limit (maxAliasCount) counted each
 * anchor's uses times its nesting, refused a block shared by 101 routes, and said so at 1:1.
 */
const MAX_ALIAS_VALUES = 100_000;

/**
 * A copy of `doc` with every alias replaced by the node it names, or the problems that prevent
 * it, each at its alias or merge: an alias with no anchor before it, one inside the node it names
 * (which would hold itself), a merge (`<<`) of something that is not a mapping, and aliases that
 * add more than MAX_ALIAS_VALUES values. Inlined, toJS converts each use on its own (yaml looked
 * every alias up by scanning all the aliases before it: 10,000 of them took 4 s). One pass in
 * document order: an alias names a node that ends before it, whose size is known.
 */
function inlineAliases(
  doc: Document,
  file: string,
  position: (offset: number) => { line: number; col: number },
): { doc: Document; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  // Without aliases there is nothing to replace, only merges to check: no copy needed.
  const copy = hasAliases(doc) ? doc.clone() : doc;
  const anchors = new Map<string, unknown>();
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  let added = 0;
  const problem = (node: AnyNode, message: string, hint: string): void => {
    const at = position(nodeOffset(node) ?? 0);
    problems.push({ ...positioned(file, at, 'SLUICE_E_CONFIG_SYNTAX', message), hint });
  };

  /** The node to use in place of `node`, and the number of values it stands for. */
  const inline = (node: AnyNode): [AnyNode, number] => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) {
        problem(node, `alias *${node.source} has no anchor &${node.source} before it`, ALIAS_HINT);
        return [node, 1];
      }
      if (open.has(target)) {
        problem(
          node,
          `alias *${node.source} is inside the node it names, which would hold itself`,
          ALIAS_HINT,
        );
        return [node, 1];
      }
      const size = sizes.get(target) ?? 1;
      added += size;
      if (added > MAX_ALIAS_VALUES && added - size <= MAX_ALIAS_VALUES) {
        problem(
          node,
          `with this alias, aliases add more than ${MAX_ALIAS_VALUES.toLocaleString('en-US')} values to the file (an alias bomb?)`,
          'an alias may be used as often as needed, but what the aliases stand for must stay within that; share smaller blocks, or write them out',
        );
      }
      return [target, size];
    }
    if (!isScalar(node) && !isMap(node) && !isSeq(node)) return [node, 1];
    if (node.anchor !== undefined) anchors.set(node.anchor, node);
    if (isScalar(node)) return [node, 1];
    open.add(node);
    let size = 1;
    if (isMap(node)) {
      for (const pair of node.items) {
        const written = pair.value;
        const [key, keySize] = inline(pair.key);
        const [value, valueSize] = inline(pair.value);
        pair.key = key;
        pair.value = value;
        size += keySize + valueSize;
        if (isMergeKey(key) && !isMergeSource(value)) {
          // At the merge as written (`<<: *list`), not at the list the alias names.
          problem(
            written ?? key,
            'a merge (<<) takes a mapping, an alias of one (*name) or a list of them',
            'write <<: *name with &name on a mapping, or <<: [*a, *b]',
          );
        }
      }
    } else {
      node.items = node.items.map((item) => {
        const [value, itemSize] = inline(item);
        size += itemSize;
        return value;
      });
    }
    open.delete(node);
    sizes.set(node, size);
    return [node, size];
  };
  const [contents] = inline(copy.contents);
  copy.contents = contents as typeof copy.contents;
  return { doc: copy, problems };
}

const ALIAS_HINT = 'put the anchor (&name) on a node before the alias (*name) and outside it';

function hasAliases(doc: Document): boolean {
  let found = false;
  visit(doc, {
    Alias() {
      found = true;
      return visit.BREAK;
    },
  });
  return found;
}

/** Whether a map key is the merge key `<<` (yaml gives it a symbol for a value). */
function isMergeKey(key: AnyNode): boolean {
  return isScalar(key) && typeof key.value === 'symbol';
}

/** What `<<` may take: a mapping or a list of them (an alias left here is reported already). */
function isMergeSource(value: AnyNode): boolean {
  const one = (n: AnyNode): boolean => isMap(n) || isAlias(n);
  return one(value) || (isSeq(value) && value.items.every(one));
}

interface FoundNode {
  /** Whether the whole path exists; otherwise key/value are the deepest ancestor that does. */
  readonly found: boolean;
  readonly key: AnyNode;
  readonly value: AnyNode;
}

function findNode(doc: Document, path: KeyPath): FoundNode {
  let cur: { key: AnyNode; value: AnyNode } = { key: null, value: doc.contents };
  for (const seg of path) {
    const next = childOf(doc, cur.value, seg, 0);
    if (next === undefined) return { found: false, ...cur };
    cur = next;
  }
  return { found: true, ...cur };
}

function childOf(
  doc: Document,
  parent: AnyNode,
  seg: string | number,
  depth: number,
): { key: AnyNode; value: AnyNode } | undefined {
  const node = deref(doc, parent);
  if (isSeq(node)) {
    const item = typeof seg === 'number' ? node.items[seg] : undefined;
    return item === undefined ? undefined : { key: null, value: item };
  }
  if (!isMap(node)) return undefined;
  // From the end: of a key given twice (reported as SLUICE_E_CONFIG_DUPLICATE_KEY), the last one is
  // the value the config holds, so problems inside it are found there.
  for (let i = node.items.length - 1; i >= 0; i--) {
    const pair = node.items[i]!;
    if (isScalar(pair.key) && typeof pair.key.value !== 'symbol' && String(pair.key.value) === String(seg)) {
      return { key: pair.key, value: pair.value };
    }
  }
  // A key brought in by a merge (`<<: *base` or `<<: [*a, *b]`) is found at its anchor's node.
  if (depth > 8) return undefined;
  for (const pair of node.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'symbol') continue;
    const source = deref(doc, pair.value);
    const sources = isSeq(source) ? source.items : [source];
    for (const s of sources) {
      const hit = childOf(doc, s, seg, depth + 1);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

function deref(doc: Document, node: AnyNode): AnyNode {
  return isAlias(node) ? node.resolve(doc) : node;
}

/** Start offset of a node; `undefined` for an empty value (`key:` with nothing after it). */
function nodeOffset(node: AnyNode): number | undefined {
  if (!isScalar(node) && !isMap(node) && !isSeq(node) && !isAlias(node)) return undefined;
  const range = node.range;
  if (!range) return undefined;
  if (isScalar(node) && node.value === null && range[0] === range[1]) return undefined;
  return range[0];
}

function positioned(
  file: string,
  pos: { line: number; col: number },
  code: ErrorCode,
  message: string,
): ConfigProblem {
  return { file, line: pos.line, col: pos.col, code, message, hint: ERROR_CATALOGUE[code].hint };
}

function lowerFirst(text: string): string {
  const first = text.split('\n')[0] ?? '';
  return first.charAt(0).toLowerCase() + first.slice(1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
