/**
 * Loads a user module for `handler:` routes and `sluice serve`: its default export is either a
 * Node request listener `(req, res) => void` or an object with `fetch(request)` (Hono, itty,
 * Elysia-on-Node and other fetch-style apps run as they are). A `close()` export (or a `close`
 * method on the default export) is called on shutdown.
 *
 * TypeScript modules are imported natively where Node strips types (Node 22.18+/23.6+ report
 * `process.features.typescript`), and compiled on load with tsx everywhere else (Node 20): as an
 * ES module where the package says so (`"type": "module"`, `.mts`), else as CommonJS through tsx's
 * require, whose stack traces name the file and line (its ESM API loaded those through a `data:`
 * URL holding the whole compiled source, which every stack frame then repeated in the logs).
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { currentUser } from '../core/current-user.js';
import { SluiceError } from '../errors/sluice-error.js';

/** A Node request listener. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A fetch-style app. */
export interface FetchApp {
  fetch(request: Request, ...rest: unknown[]): Response | Promise<Response>;
}

/** A loaded handler module. */
export type LoadedHandler =
  | {
      readonly kind: 'listener';
      readonly module: string;
      readonly listener: NodeListener;
      close(): Promise<void>;
    }
  | { readonly kind: 'fetch'; readonly module: string; readonly app: FetchApp; close(): Promise<void> };

const TS = /\.[mc]?ts$/;

/** Imports `module` (absolute path) and checks its default export. */
export async function loadHandler(module: string): Promise<LoadedHandler> {
  let mod: Record<string, unknown>;
  try {
    const url = pathToFileURL(module).href;
    if (TS.test(module) && !(process.features as { typescript?: unknown }).typescript) {
      if (isEsm(module)) {
        const { tsImport } = await import('tsx/esm/api');
        mod = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
      } else {
        const { require: tsxRequire } = await import('tsx/cjs/api');
        // What Node's import() makes of a CommonJS module: module.exports is the default export,
        // its properties the named ones. require() hands back module.exports itself, so a
        // `module.exports = app` (or `export = app`) in .ts or .cts exported "no default", while
        // the same .js loaded.
        const exports: unknown = tsxRequire(module, import.meta.url);
        mod = { ...(exports as object), default: exports };
      }
    } else {
      mod = (await import(url)) as Record<string, unknown>;
    }
  } catch (err) {
    throw new SluiceError(
      'SLUICE_E_HANDLER_LOAD',
      `cannot load handler ${module}: ${loadErrorText(module, err)}`,
      {
        cause: err,
      },
    );
  }
  let exported = mod.default;
  // A .ts module compiled to CommonJS (a package without "type": "module") arrives wrapped once more.
  if (isObject(exported) && exported.__esModule === true && 'default' in exported)
    exported = exported.default;
  const closer =
    typeof mod.close === 'function'
      ? mod.close
      : isObject(exported) && typeof exported.close === 'function'
        ? exported.close.bind(exported)
        : null;
  const close = async () => {
    if (closer !== null) await (closer as () => unknown)();
  };
  if (typeof exported === 'function') {
    return { kind: 'listener', module, listener: exported as NodeListener, close };
  }
  if (isObject(exported) && typeof exported.fetch === 'function') {
    const app = exported as unknown as FetchApp;
    return { kind: 'fetch', module, app, close };
  }
  throw new SluiceError(
    'SLUICE_E_HANDLER_LOAD',
    `handler ${module} must default-export a (req, res) function or an object with fetch(request); it exports ${describe(exported)}`,
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function describe(v: unknown): string {
  if (v === undefined) return 'no default';
  if (v === null) return 'null';
  return isObject(v) ? `an object with keys ${Object.keys(v).join(', ') || '(none)'}` : `a ${typeof v}`;
}

/**
 * What went wrong loading a module, with where when it can be told: tsx's compile errors carry
 * `FILE:LINE:COL: ERROR: …` after a first line that says only "Transform failed with 1 error:", and
 * Node's SyntaxError from an ES module import carries no position at all (`node --check` on the
 * file gives it: run only on this failure path, never when a handler loads).
 */
function loadErrorText(module: string, err: unknown): string {
  // A module the workers' user cannot read (or a directory on its path it cannot enter) is
  // "not found" to the loader; said as what it is ('sluice check' runs as root and passes it).
  try {
    accessSync(module, constants.R_OK);
  } catch (access) {
    if ((access as NodeJS.ErrnoException).code === 'EACCES')
      return `permission denied: ${currentUser()} cannot read it, or cannot enter a directory on its path`;
  }
  const e = typeof err === 'object' && err !== null ? (err as { message?: unknown; name?: unknown }) : {};
  const message = typeof e.message === 'string' ? e.message : String(err);
  const lines = message.split('\n').filter((l) => l.trim() !== '');
  const first = lines[0] ?? '';
  if (/^Transform failed with \d+ errors?:$/.test(first) && lines.length > 1)
    return lines.slice(1).join('; ');
  const where = thrownAt(err);
  if (where !== null) return `${where}: ${first}`;
  // JavaScript only (node --check cannot read TypeScript on every Node), and only a position in
  // the module itself: a SyntaxError thrown at run time (JSON.parse) or by a dependency is not its.
  if (e.name === 'SyntaxError' && /\.[mc]?js$/.test(module)) {
    const where = checkedLine(['--check', module], module) ?? reparsedLine(module, err);
    if (where !== null) return `${where}: ${first}`;
  }
  return first;
}

/** Where sluice's own code is (dist/ or src/): its stack frames are not the module's. */
const OWN_CODE = `${dirname(dirname(fileURLToPath(import.meta.url)))}${sep}`;

/**
 * Where an error thrown while a module loaded comes from, as `FILE:LINE`, or null: the place Node's
 * CommonJS loader puts at the head of the stack of a syntax error (`FILE:LINE`, the source line and
 * a caret: a dependency's included, which the message alone never named), else the first stack frame
 * in user code (a top-level throw), past Node's own frames, sluice's and those of packages
 * (node_modules: tsx). Node's ES module loader gives a syntax error neither: null.
 */
function thrownAt(err: unknown): string | null {
  const stack = (err as { stack?: unknown } | null)?.stack;
  if (typeof stack !== 'string') return null;
  const head = /^(\S[^\n]*):(\d+)\n/.exec(stack);
  if (head !== null) {
    const file = filePath(head[1]!);
    if (file !== null) return `${file}:${head[2]}`;
  }
  for (const line of stack.split('\n')) {
    const frame = /^\s+at (?:async )?(?:[^(]*\()?(.+?):(\d+):\d+\)?$/.exec(line);
    const file = frame === null ? null : filePath(frame[1]!);
    if (file === null || file.startsWith(OWN_CODE) || file.includes(`${sep}node_modules${sep}`)) continue;
    return `${file}:${frame![2]}`;
  }
  return null;
}

/** The path of a stack trace's file (a path or a file: URL), or null for node:, data: and the like. */
function filePath(name: string): string | null {
  if (name.startsWith('file://')) {
    try {
      return fileURLToPath(name);
    } catch {
      return null;
    }
  }
  return isAbsolute(name) ? name : null;
}

/** The `FILE:LINE` of the syntax error `node ARGS` reports for `module`, or null. */
function checkedLine(args: string[], module: string, input?: string, label = module): string | null {
  const check = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 10_000, input });
  const where = /^(.+):(\d+)$/m.exec(check.stderr ?? '');
  return check.status !== 0 && where?.[1] === label ? `${module}:${where[2]}` : null;
}

/**
 * The line of a syntax error in a `.js` module Node loaded as an ES module although no
 * `"type": "module"` says so: Node parses it as CommonJS, then again as ESM when that fails on
 * module syntax (`export`), and `node --check` does the first only (Node 20.20 passes such a file
 * whatever follows). The source is checked again as ESM, from stdin. Not for an error whose stack
 * names the module: one thrown while it ran, or from a CommonJS parse, which `--check` reported.
 */
function reparsedLine(module: string, err: unknown): string | null {
  if (!module.endsWith('.js')) return null;
  const stack =
    typeof (err as { stack?: unknown }).stack === 'string' ? (err as { stack: string }).stack : '';
  if (stack.includes(module) || stack.includes(pathToFileURL(module).href)) return null;
  let source: string;
  try {
    source = readFileSync(module, 'utf8');
  } catch {
    return null;
  }
  return checkedLine(['--input-type=module', '--check'], module, source, '[stdin]');
}

/** Whether a TypeScript file is an ES module: `.mts`, or `.ts` in a package of `"type": "module"`. */
function isEsm(module: string): boolean {
  if (module.endsWith('.mts')) return true;
  if (module.endsWith('.cts')) return false;
  for (let dir = dirname(module); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown };
      return pkg.type === 'module';
    } catch (err) {
      // A package.json that cannot be parsed is Node's error to report when it loads the module.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    if (dirname(dir) === dir) return false;
  }
}
