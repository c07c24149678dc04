/** Where the paths an nginx config names go in the YAML. */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { hasVariables } from './variables.js';

/** Where paths in the nginx config are resolved from, and where the YAML will be. */
export interface PathContext {
  /** nginx's prefix: relative certificate paths are resolved against it. */
  readonly prefix: string;
  /** The directory of the YAML file; paths inside it are written relative to it. `undefined`: always absolute. */
  readonly outputDir: string | undefined;
}

/** A path of the nginx config (a certificate, a key) as the YAML should name it. */
export function outputPath(p: string, paths: PathContext): string {
  if (isAbsolute(p)) return p;
  const full = resolve(join(paths.prefix, p));
  if (paths.outputDir === undefined) return full;
  const rel = relative(resolve(paths.outputDir), full);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? full : rel;
}

/**
 * The file a directive's first argument names (a certificate, a key, a CA), as the YAML should
 * name it; null when it is none sluice can read: empty, built from variables, `data:` or `engine:`.
 */
export function namedFile(arg: string | undefined, paths: PathContext): string | null {
  const p = arg ?? '';
  if (p === '' || hasVariables(p) || p.startsWith('data:') || p.startsWith('engine:')) return null;
  return outputPath(p, paths);
}
