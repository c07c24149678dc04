/**
 * Loading a config: the whole pipeline, from a file, a text or an object.
 *
 *   read ─▶ parse YAML (positions) ─▶ ${ENV} ─▶ schema (zod) ─▶ meaning + cross references
 *        ─▶ normalise (defaults, units) ─▶ deep-freeze
 *
 * Every stage reports by key path into one ProblemCollector; at the end each problem is given
 * its line and column and all of them are returned together, in document order. After a failed
 * schema check the meaning checks still run on the parts that are well-formed.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { checkHostUsers } from './check-user.js';
import type { ConfigDraft } from './config-draft.js';
import { type Environment, interpolateEnv } from './interpolate.js';
import { formatKeyPath, isMapping, type KeyPath } from './key-path.js';
import { normaliseConfig } from './normalise.js';
import { CONFIG_OBJECT, type ConfigProblem } from './problem.js';
import { type PathProblem, ProblemCollector } from './problem-collector.js';
import { isTemplateSchema, sluiceConfigSchema } from './schema.js';
import { reportSchemaIssues } from './schema-issues.js';
import { salvage, schemaAt } from './schema-walk.js';
import { objectLocator, type SourceLocator } from './source-locator.js';
import type { StandIns } from './stand-ins.js';
import type { ResolvedConfig } from './types.js';
import { parseYamlSource } from './yaml-source.js';

/** A resolved config with its warnings, or every problem that keeps it from being one. */
export type ConfigResult =
  | { readonly ok: true; readonly config: ResolvedConfig; readonly warnings: readonly ConfigProblem[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/** What else to check beyond the file itself. */
export interface LoadOptions {
  /** `user:`/`group:` exist in this host's files, when running as root (see check-user.ts). */
  readonly hostUsers?: boolean;
  /**
   * Unset `${VARIABLES}` read as these stand-ins instead of being problems (stand-ins.ts): `reload`,
   * `init` and `doctor` check a config for a service that has an environment they do not.
   */
  readonly standIns?: StandIns;
}

/** Extensions loaded as JavaScript modules whose default export is the config object. */
export const MODULE_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']);

/**
 * Reads and resolves a config file. YAML (`.yaml`, `.yml`) and JSON (`.json`, read as YAML) are
 * parsed with positions; a module (`.ts`, `.js`, ...) is imported and its default export resolved
 * like `resolveConfigObject`. Problems name `file` as given; the resolved `file` is absolute.
 */
export async function loadConfigFile(
  file: string,
  env: Environment = process.env,
  options: LoadOptions = {},
): Promise<ConfigResult> {
  if (MODULE_EXTENSIONS.has(extname(file).toLowerCase())) return loadConfigModule(file, options);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    return failed(fileProblem(file, `cannot read the file: ${ioReason(err)}`));
  }
  const text = utf8Text(bytes, file);
  return typeof text === 'string' ? loadConfigText(text, file, env, options) : failed(text);
}

/**
 * The file's text, or a problem at its first byte that is not UTF-8. YAML is Unicode; read as
 * 'utf8', a Latin-1 `café` became `caf\uFFFD` silently and was served that way. The BOM is kept
 * (the YAML parser skips it), so columns stay as the parser counts them.
 */
function utf8Text(bytes: Buffer, file: string): string | ConfigProblem {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const text = bytes.toString('utf8');
    const { index, byte } = firstNonUtf8(bytes, text);
    const lineStart = text.lastIndexOf('\n', index - 1) + 1;
    const line = text.slice(0, lineStart).split('\n').length;
    const hex = `0x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    // From 0xA0 on, Latin-1 and Windows-1252 agree: show what the byte was most likely meant as.
    const meant = byte >= 0xa0 ? ` (in Latin-1, ${hex} is ${JSON.stringify(String.fromCharCode(byte))})` : '';
    return {
      file,
      line,
      col: index - lineStart + 1,
      code: 'SLUICE_E_CONFIG_SYNTAX',
      message: `byte ${hex} is not UTF-8: the file is in another encoding`,
      hint: `save the file as UTF-8${meant}`,
    };
  }
}

/** Where `text` (bytes decoded with U+FFFD for bad sequences) has its first replaced byte. */
function firstNonUtf8(bytes: Buffer, text: string): { index: number; byte: number } {
  let offset = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!;
    // A U+FFFD written in the file is three bytes EF BF BD; a replaced one is not.
    if (
      code === 0xfffd &&
      !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)
    ) {
      return { index: i, byte: bytes[offset]! };
    }
    offset += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (code > 0xffff) i++;
  }
  return { index: text.length, byte: bytes[offset] ?? 0 };
}

/** Resolves config text (YAML or JSON); `file` is used as given in problems and resolved for `config.file`. */
export function loadConfigText(
  text: string,
  file: string,
  env: Environment = process.env,
  options: LoadOptions = {},
): ConfigResult {
  const source = parseYamlSource(text, file);
  if (source.value === undefined) return failed(...source.problems);
  return check(source.value, {
    locator: source.locator,
    absoluteFile: resolve(file),
    env,
    isPlainScalar: (path) => source.isPlainScalar(path),
    earlier: source.problems,
    hostUsers: options.hostUsers === true,
    standIns: options.standIns ?? null,
  });
}

/**
 * Resolves a config object (`createSluice(config)`, the default export of `sluice.config.ts`)
 * with the same checks; problems carry no line (the key path in the message locates them), and
 * name `file` when given, else `"config"`. Strings are not `${ENV}`-interpolated: code that
 * builds a config object reads `process.env` itself.
 */
export function resolveConfigObject(
  input: unknown,
  file: string | null = null,
  options: LoadOptions = {},
): ConfigResult {
  return check(input, {
    locator: objectLocator(input, file ?? CONFIG_OBJECT),
    absoluteFile: file === null ? null : resolve(file),
    env: null,
    isPlainScalar: () => false,
    earlier: [],
    hostUsers: options.hostUsers === true,
    standIns: null,
  });
}

interface CheckOptions {
  readonly locator: SourceLocator;
  readonly absoluteFile: string | null;
  readonly env: Environment | null;
  readonly isPlainScalar: (path: KeyPath) => boolean;
  /** Problems the parser found that did not stop it (keys given twice). */
  readonly earlier: readonly ConfigProblem[];
  readonly hostUsers: boolean;
  readonly standIns: StandIns | null;
}

function check(input: unknown, options: CheckOptions): ConfigResult {
  // With stand-ins, a problem at a key an unset variable filled is the stand-in's: the check runs
  // again with the variable's next value (a port, a URL, ...), so only the file's own problems stay.
  for (;;) {
    const { result, problems } = checkOnce(input, options);
    if (result.ok || options.standIns === null || !options.standIns.retry(problems.map((p) => p.path)))
      return result;
  }
}

function checkOnce(
  input: unknown,
  options: CheckOptions,
): { result: ConfigResult; problems: readonly PathProblem[] } {
  const problems = new ProblemCollector();
  const value =
    options.env === null
      ? input
      : interpolateEnv(input, options.env, problems, {
          isPlainScalar: options.isPlainScalar,
          isTemplate: (path) => isTemplateSchema(schemaAt(sluiceConfigSchema, path)),
          accepts: (path, v) => schemaAt(sluiceConfigSchema, path)?.safeParse(v).success ?? true,
          ...(options.standIns === null ? {} : { standIns: options.standIns }),
        });
  problems.endStage();

  const parsed = sluiceConfigSchema.safeParse(value);
  let draft: ConfigDraft;
  if (parsed.success) draft = parsed.data;
  else {
    reportSchemaIssues(parsed.error.issues, value, sluiceConfigSchema, problems);
    const salvaged = salvage(sluiceConfigSchema, value);
    // salvage keeps exactly the schema-conforming parts, which is what ConfigDraft describes.
    draft = isMapping(salvaged) ? (salvaged as ConfigDraft) : {};
  }
  problems.endStage();

  const config = normaliseConfig(
    draft,
    {
      file: options.absoluteFile,
      declaredUpstreams: declaredUpstreams(value),
      env:
        options.env !== null && options.standIns !== null
          ? options.standIns.environment(options.env)
          : options.env,
    },
    problems,
  );
  if (options.hostUsers) checkHostUsers(draft, problems);
  const all = [
    ...options.earlier.map((p) => ({ p, order: 0 })),
    ...problems.problems.map((p) => place(p, options.locator)),
  ];
  if (all.length > 0) return { result: failed(...inDocumentOrder(all)), problems: problems.problems };
  const warnings = inDocumentOrder(problems.warnings.map((p) => place(p, options.locator)));
  return { result: { ok: true, config, warnings }, problems: [] };
}

/** Names under `upstreams:` as written; `null` when it is not a mapping (references cannot be checked). */
function declaredUpstreams(value: unknown): ReadonlySet<string> | null {
  const upstreams = isMapping(value) ? value.upstreams : undefined;
  if (upstreams === undefined) return new Set();
  return isMapping(upstreams) ? new Set(Object.keys(upstreams)) : null;
}

function place(problem: PathProblem, locator: SourceLocator): { p: ConfigProblem; order: number } {
  const pos = locator.locate(problem.path, problem.at);
  const prefix = formatKeyPath(problem.at === 'key' ? problem.path.slice(0, -1) : problem.path);
  return {
    p: {
      file: locator.file,
      line: pos.line,
      col: pos.col,
      code: problem.code,
      message: prefix === '' ? problem.message : `${prefix}: ${problem.message}`,
      hint: problem.hint ?? ERROR_CATALOGUE[problem.code].hint,
    },
    order: pos.order,
  };
}

/** Sorted by line and column (by walk order for objects), each distinct problem once. */
function inDocumentOrder(items: readonly { p: ConfigProblem; order: number }[]): ConfigProblem[] {
  const sorted = [...items].sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.order - b.order);
  const seen = new Set<string>();
  return sorted
    .map((i) => i.p)
    .filter((p) => {
      const id = `${p.line}:${p.col}:${p.code}:${p.message}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
}

async function loadConfigModule(file: string, options: LoadOptions): Promise<ConfigResult> {
  let mod: unknown;
  try {
    // The query makes a reload import the file afresh instead of the cached first version.
    const url = `${pathToFileURL(resolve(file)).href}?t=${Date.now()}`;
    if (/\.[mc]?ts$/i.test(file)) {
      // TypeScript configs are compiled on load (tsx), so they work on Node 20 as well.
      const { tsImport } = await import('tsx/esm/api');
      mod = await tsImport(url, import.meta.url);
    } else {
      mod = await import(url);
    }
  } catch (err) {
    return failed(
      fileProblem(file, `cannot load the module: ${err instanceof Error ? err.message : String(err)}`),
    );
  }
  let config: unknown = isMapping(mod) ? await mod.default : undefined;
  // A .ts config in a CommonJS package is compiled to CommonJS: its export arrives wrapped once more.
  if (isMapping(config) && config.__esModule === true && 'default' in config) config = await config.default;
  if (config === undefined) {
    return failed(
      fileProblem(file, 'the module has no default export; write export default defineConfig({ ... })'),
    );
  }
  return resolveConfigObject(config, file, options);
}

function fileProblem(file: string, message: string): ConfigProblem {
  const code: ErrorCode = 'SLUICE_E_CONFIG_FILE';
  return { file, line: 0, col: 0, code, message, hint: ERROR_CATALOGUE[code].hint };
}

function ioReason(err: unknown): string {
  const code = isMapping(err) ? err.code : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return err instanceof Error ? err.message : String(err);
}

function failed(...problems: ConfigProblem[]): ConfigResult {
  return { ok: false, problems };
}
