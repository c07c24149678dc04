/** Naming servers and routes: the name written, else one derived from what they match, made unique. */
import { formatKeyPath, type KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';

/** One thing to name. */
export interface NameRequest {
  /** `name:` as written, if any. */
  readonly explicit: string | undefined;
  /** The name to use without one (a server's first server_name, a route's path). */
  readonly derived: string;
  /** The node of the server or route. */
  readonly path: KeyPath;
}

/**
 * Names every request. Written names are taken first, so a derived name never steals one; a
 * written name used twice is a problem (at the second). A derived name that is taken gets
 * `#N`, N being the 1-based position in the list (then N+1, ... should that be taken too).
 */
export function assignUniqueNames(
  requests: readonly (NameRequest | undefined)[],
  what: 'server' | 'route',
  problems: ProblemCollector,
): (string | undefined)[] {
  const taken = new Map<string, KeyPath>();
  requests.forEach((r) => {
    if (r?.explicit === undefined) return;
    if (r.explicit.trim() === '') {
      problems.error([...r.path, 'name'], 'SLUICE_E_CONFIG_VALUE', `a ${what} name must not be empty`, {
        hint: 'write a name, or remove the key to use the default one',
      });
      return;
    }
    const first = taken.get(r.explicit);
    if (first === undefined) taken.set(r.explicit, r.path);
    else {
      problems.error(
        [...r.path, 'name'],
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `${what} name ${JSON.stringify(r.explicit)} is already used by ${formatKeyPath(first)}`,
      );
    }
  });
  return requests.map((r, i) => {
    if (r === undefined) return undefined;
    if (r.explicit !== undefined && r.explicit.trim() !== '') return r.explicit;
    let name = r.derived;
    for (let n = i + 1; taken.has(name); n++) name = `${r.derived}#${n}`;
    taken.set(name, r.path);
    return name;
  });
}
