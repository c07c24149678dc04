/**
 * Reads an nginx config and every file it includes, into one tree. `include` is replaced by the
 * directives of the files it names, which keep their own file and line, so a warning about an
 * included directive points into the included file.
 *
 * A relative include is resolved as nginx resolves it: against the prefix, the directory of the
 * main config file (nginx's conf prefix), whichever file the include is written in. When nothing
 * is found there, the directory of the including file is tried too, so a site file imported on
 * its own (`sites-enabled/app.conf` including `snippets/ssl.conf`) still finds its neighbours.
 *
 * The files are read through `NginxFiles`, so the conversion can run on files held in memory.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { NginxDirective } from './ast.js';
import { expandGlob, isGlobPattern } from './glob.js';
import { MAX_NESTING, parseNginx, tooDeep } from './parse.js';
import type { WarningList } from './warnings.js';

/** How included files are found and read. */
export interface NginxFiles {
  /** The text of `path`; throws (a Node `ErrnoException` when it can) when it cannot be read. */
  read(path: string): string;
  /** The files matching the glob `pattern`, sorted. */
  glob(pattern: string): string[];
}

/** The files of the local file system. */
export const DISK: NginxFiles = {
  read: (path) => readFileSync(path, 'utf8'),
  glob: expandGlob,
};

/** Nested includes beyond this are a loop (nginx has no limit, and loops until it runs out of files). */
const MAX_INCLUDE_DEPTH = 32;

/** What was read: the tree with includes expanded, and every file in reading order. */
export interface NginxTree {
  readonly directives: readonly NginxDirective[];
  readonly files: readonly string[];
}

/** Where the tree comes from. */
export interface TreeSource {
  /** The main file's name, as given: every warning and error names files this way. */
  readonly file: string;
  /** Its text. */
  readonly text: string;
  /** The directory relative includes are resolved against; default: the main file's directory. */
  readonly prefix?: string | undefined;
  readonly files?: NginxFiles | undefined;
}

/**
 * Parses the main file and its includes. Throws `NginxSyntaxError` for a syntax error in any
 * file; an included file that cannot be read is a warning (the conversion goes on without it).
 * `files` receives every file read, in reading order (the order warnings are sorted in).
 */
export function loadNginxTree(source: TreeSource, warnings: WarningList, files: string[] = []): NginxTree {
  const io = source.files ?? DISK;
  const prefix = source.prefix ?? dirname(source.file);
  files.push(source.file);
  const directives = expand(parseNginx(source.text, source.file), [source.file], {
    io,
    prefix,
    warnings,
    files,
  });
  return { directives, files };
}

interface Walk {
  readonly io: NginxFiles;
  readonly prefix: string;
  readonly warnings: WarningList;
  readonly files: string[];
}

/** `list` with its includes read in place; `depth`: how many blocks `list` is nested in. */
function expand(
  list: readonly NginxDirective[],
  chain: readonly string[],
  walk: Walk,
  depth = 0,
): NginxDirective[] {
  const out: NginxDirective[] = [];
  for (const d of list) {
    if (d.name !== 'include') {
      // Each file is checked on its own; an include inside blocks adds its file's levels to theirs.
      if (d.block !== null && depth >= MAX_NESTING) throw tooDeep(d.file, d.line, d.col, d.name);
      out.push(d.block === null ? d : { ...d, block: expand(d.block, chain, walk, depth + 1) });
      continue;
    }
    const arg = d.args[0];
    if (arg === undefined || d.args.length !== 1 || d.block !== null) {
      walk.warnings.add(d, 'include takes one file name or pattern; skipped');
      continue;
    }
    for (const target of resolveInclude(d, arg, walk)) {
      if (chain.includes(target) || chain.length >= MAX_INCLUDE_DEPTH) {
        walk.warnings.add(d, `include ${target} includes itself (through ${chain.join(' → ')}); skipped`);
        continue;
      }
      let text: string;
      try {
        text = walk.io.read(target);
      } catch (err) {
        walk.warnings.add(
          d,
          `include ${target}: cannot read the file (${reason(err)}); its directives are missing`,
        );
        continue;
      }
      if (!walk.files.includes(target)) walk.files.push(target);
      for (const x of expand(parseNginx(text, target), [...chain, target], walk, depth)) out.push(x);
    }
  }
  return out;
}

/** The files an include names: against the prefix first, then next to the including file. */
function resolveInclude(d: NginxDirective, arg: string, walk: Walk): string[] {
  const candidates = isAbsolute(arg) ? [arg] : [join(walk.prefix, arg), join(dirname(d.file), arg)];
  const unique = [...new Set(candidates)];
  if (!isGlobPattern(arg)) {
    // A plain name: the first place that has it, else the prefix one (whose read then fails).
    return [unique.find((c) => exists(c, walk.io)) ?? unique[0]!];
  }
  for (const pattern of unique) {
    const found = walk.io.glob(pattern);
    if (found.length > 0) return found;
  }
  // nginx accepts a pattern that matches nothing; the warning only says so.
  walk.warnings.add(d, `include ${arg} matches no file`);
  return [];
}

function exists(path: string, io: NginxFiles): boolean {
  try {
    io.read(path);
    return true;
  } catch {
    return false;
  }
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return err instanceof Error ? err.message : String(err);
}
