/**
 * The file patterns of nginx's `include` (glob(3): `*`, `?`, `[...]`), for Node 20, which has no
 * `fs.glob`. Each path segment with a wildcard lists one directory; results are sorted, and `*`
 * does not match a leading dot, as glob(3) does.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Whether `pattern` has glob wildcards (nginx checks for `*`, `?` and `[`). */
export function isGlobPattern(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** A glob segment as an anchored regular expression. */
export function segmentRegex(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) source += '\\[';
      else {
        let body = segment.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        source += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The existing paths matching `pattern`, sorted; none is not an error (nginx's include agrees). */
export function expandGlob(pattern: string): string[] {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  let paths = [absolute ? '/' : '.'];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    const next: string[] = [];
    for (const base of paths) {
      if (!isGlobPattern(segment)) {
        const p = join(base, segment);
        if (last ? isFile(p) : isDirectory(p)) next.push(p);
        continue;
      }
      const re = segmentRegex(segment);
      let entries: string[];
      try {
        entries = readdirSync(base).sort();
      } catch {
        continue;
      }
      for (const entry of entries) {
        if (entry.startsWith('.') && !segment.startsWith('.')) continue;
        if (!re.test(entry)) continue;
        const p = join(base, entry);
        if (last ? isFile(p) : isDirectory(p)) next.push(p);
      }
    }
    paths = next;
  });
  return paths;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
