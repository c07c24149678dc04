/**
 * The YAML side of config loading (the one module that imports `yaml`): parse with node
 * positions, report syntax errors and repeated keys, and locate any key path afterwards.
 *
 *   text ─▶ parseDocument (LineCounter) ─▶ syntax problems ─▶ repeated keys ─▶ plain data
 *                    └──────────────▶ locator: key path ─▶ node ─▶ line:col
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
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

/** Parses YAML text, keeping node positions; `file` is used as given in every problem. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  // uniqueKeys is off because repeated keys are found below with their key path and both lines;
  // merge keys (`<<: *defaults`) are on because YAML users reach for them to share route blocks.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: true });
  const position = (offset: number): { line: number; col: number } => lineCounter.linePos(offset);

  const problems: ConfigProblem[] = [];
  for (const err of [...doc.errors, ...doc.warnings]) problems.push(syntaxProblem(err, file, position));
  const keys = keyProblems(doc, file, position);
  // A key that is a list or mapping has no JavaScript form (toJS would stringify it and print a
  // process warning), so it stops loading like a syntax error; a repeated key does not.
  const fatal = problems.length > 0 || keys.some((p) => p.code === 'SLUICE_E_CONFIG_SYNTAX');
  problems.push(...keys);

  let value: unknown;
  if (!fatal) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // toJS refuses alias bombs ("billion laughs") rather than expanding them.
      problems.push(
        positioned(file, { line: 1, col: 1 }, 'SLUICE_E_CONFIG_SYNTAX', lowerFirst(errorText(err))),
      );
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

function syntaxProblem(
  err: YAMLError,
  file: string,
  position: (offset: number) => { line: number; col: number },
): ConfigProblem {
  const message =
    err.code === 'MULTIPLE_DOCS'
      ? 'only one YAML document is allowed; remove the "---" separator and what follows it'
      : lowerFirst(err.message);
  return positioned(file, position(err.pos[0]), 'SLUICE_E_CONFIG_SYNTAX', message);
}

/** Keys that are lists or mappings, and keys given twice in one mapping (the last would silently win). */
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
        if (!isScalar(pair.key) || typeof pair.key.value === 'symbol') continue;
        const key = String(pair.key.value);
        const offset = pair.key.range?.[0] ?? 0;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, offset);
        else {
          const where = formatKeyPath(path);
          const message = `${where === '' ? '' : `${where}: `}key ${JSON.stringify(key)} is given twice in one mapping (first at line ${position(first).line})`;
          out.push(positioned(file, position(offset), 'SLUICE_E_CONFIG_DUPLICATE_KEY', message));
        }
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
  for (const pair of node.items) {
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
