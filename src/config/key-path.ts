/** Key paths: where a value sits in the config, as keys and list indices from the root. */

/** A location inside the config, e.g. `['servers', 0, 'routes', 1, 'proxy', 'upstream']`. */
export type KeyPath = readonly (string | number)[];

/** Keys written bare in a formatted path; anything else (dots, spaces, empty) is quoted. */
const BARE_KEY = /^[A-Za-z_$][\w$-]*$/;

/** Formats a key path as people read it: `servers[0].routes[1].proxy.upstream`, `upstreams["a.b"]`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (BARE_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Whether a value is a plain mapping (not a list, not null). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `path` inside `root`, and whether every step of the path exists. */
export function valueAtPath(root: unknown, path: KeyPath): { found: boolean; value: unknown } {
  let cur = root;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number' && seg < cur.length) cur = cur[seg];
    else if (isMapping(cur) && Object.hasOwn(cur, String(seg))) cur = cur[String(seg)];
    else return { found: false, value: undefined };
  }
  return { found: true, value: cur };
}
