/**
 * Stand-in values for `${VARIABLES}` a command does not have: `sluice reload`, `init` and `doctor`
 * check a config for a service that reads its own environment (systemd's EnvironmentFile=, a
 * Kubernetes Secret). Each unset variable reads as a value its key takes, so everything else in
 * the file is still checked.
 *
 * One text for every variable was not enough: `listen: ${PORT}`, `url: ${BACKEND_URL}`,
 * `workers: ${WORKERS}` or `shutdown_timeout: ${GRACE}` take no word, and the whole check failed
 * on them. Each variable gets its own values (two `listen: ${A}` / `${B}` must not collide, two
 * token_env secrets must not be one token), the same at every use (`${PORT}` twice is one port).
 * A variable tries its values in turn: the schema picks the first of its type, and a problem the
 * later checks find at the key it filled (a port in a URL key) moves it on to the next (`retry`);
 * inside a longer string it tries them as text.
 */
import type { Environment } from './interpolate.js';
import type { KeyPath } from './key-path.js';

/** How many values a variable has to try (#values). */
const VALUES = 8;

/**
 * The numbers a variable varied `far` takes instead of its own, the first its key's schema takes:
 * beyond the floors and caps what init and doctor derive passes through (65536 open files,
 * fs.file-max 1000000, somaxconn 65535, the host's own values), which the small stand-ins of both
 * other sets stay below, so their outputs compared equal for a value that matters.
 */
const FAR_NUMBERS = [4_000_000, 1000] as const;

/** The stand-ins of one load, by variable name. */
export class StandIns {
  /** Variables in the order first met, which numbers their ports. */
  readonly #order: Map<string, number>;
  /** Per variable, the first of its values the next check may use. */
  readonly #from: Map<string, number>;
  /** The one variable whose values are its second set (`varied`), else null. */
  readonly #varied: string | null;
  /** Whether the varied variable's numbers are `FAR_NUMBERS`. */
  readonly #far: boolean;
  /** The keys a whole `${NAME}` filled in the last check, with the variable and the value's index. */
  #filled: { path: KeyPath; name: string; index: number }[] = [];

  constructor(
    order = new Map<string, number>(),
    from = new Map<string, number>(),
    varied: string | null = null,
    far = false,
  ) {
    this.#order = order;
    this.#from = from;
    this.#varied = varied;
    this.#far = far;
  }

  /** The variables given a stand-in so far, in the order met. */
  get names(): readonly string[] {
    return [...this.#order.keys()];
  }

  /**
   * The same stand-ins with other values for `name` (another text, port, count...), the same kind
   * of value at each key: what a config read with them yields and one read with these do not
   * share depends on `name`'s value. `far`: numbers far larger than the others (`FAR_NUMBERS`),
   * where a key's schema takes them; a key that takes them but no later check does leaves the
   * config with a problem.
   */
  varied(name: string, far = false): StandIns {
    return new StandIns(new Map(this.#order), new Map(this.#from), name, far);
  }

  /** The text `name` reads as inside a longer string: a valid host name, ≥ 16 characters (a token). */
  text(name: string): string {
    this.#number(name);
    const slug = name.toLowerCase().replaceAll('_', '-');
    return name === this.#varied ? `sluice-env-stand-in-b-${slug}` : `sluice-env-stand-in-${slug}`;
  }

  /**
   * What the value at `path` that is exactly `${name}` reads as: the first of the variable's values
   * the key's schema `takes`, from where the last `retry` left the variable.
   */
  pick(name: string, path: KeyPath, takes: (value: unknown) => boolean): unknown {
    const values = this.#values(name);
    let index = this.#from.get(name) ?? 0;
    while (index < VALUES - 1 && !takes(values[index])) index++;
    this.#filled.push({ path, name, index });
    const value = values[index];
    if (this.#far && name === this.#varied && typeof value === 'number')
      return FAR_NUMBERS.find((n) => takes(n)) ?? value;
    return value;
  }

  /**
   * What `${name}` inside a longer string at `path` reads as: its text, then on a retry its next
   * values as text (`http://backend:${PORT}/` takes no word, but a port).
   */
  inText(name: string, path: KeyPath): string {
    const index = this.#from.get(name) ?? 0;
    this.#filled.push({ path, name, index });
    return String(this.#values(name)[index]);
  }

  /**
   * After a check that found problems at `paths`: moves each variable that filled one of them (or
   * a key above one) on to its next value. False when none moved: the problems are the file's own,
   * or no value fits. Every retry moves a variable forward, so checking again ends.
   */
  retry(paths: readonly KeyPath[]): boolean {
    const filled = this.#filled;
    this.#filled = [];
    let moved = false;
    for (const f of filled) {
      const here = paths.some((p) => f.path.length <= p.length && f.path.every((k, i) => p[i] === k));
      if (!here || f.index + 1 >= VALUES || (this.#from.get(f.name) ?? 0) > f.index) continue;
      this.#from.set(f.name, f.index + 1);
      moved = true;
    }
    return moved;
  }

  /**
   * `env` with every unset (or empty) variable reading as `read` gives it: its stand-in text
   * (token_env), or, inside a longer string, what `inText` gives there.
   */
  environment(env: Environment, read = (name: string): string => this.text(name)): Environment {
    return new Proxy(env, {
      get: (target, name) =>
        typeof name === 'string' && (target[name] === undefined || target[name] === '')
          ? read(name)
          : Reflect.get(target, name),
    });
  }

  /** A word, a port, a count, a switch, a URL, an address, a duration, a size: `VALUES` of them. */
  #values(name: string): readonly unknown[] {
    const text = this.text(name);
    const b = name === this.#varied;
    const port = (b ? 28000 : 18000) + this.#number(name);
    const [count, on, duration, size] = b ? [2, false, '2s', '2k'] : [1, true, '1s', '1k'];
    return [text, port, count, on, `http://${text}.invalid`, `127.0.0.1:${port}`, duration, size];
  }

  #number(name: string): number {
    let n = this.#order.get(name);
    if (n === undefined) {
      n = this.#order.size;
      this.#order.set(name, n);
    }
    return n;
  }
}
