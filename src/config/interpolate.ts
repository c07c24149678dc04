/**
 * `${NAME}` environment interpolation, applied to every string value after parsing and before
 * the schema check, so each unset variable is reported at the scalar that uses it.
 * `$${` is a literal `${`. A bare `$word` is not touched: it is a request variable (`$host`).
 * A value is taken verbatim: put into a `$variable` template (a header value sluice sets, a
 * redirect target, a hash or rate-limit key) its `$` is written `$$`, so an API key `pa$$w0rd`
 * arrives as written instead of as `pa$w0rd`, or as a client's Host for `k3y$http_host`.
 */
import { isMapping, type KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';
import type { StandIns } from './stand-ins.js';

/** Environment variables as `process.env` holds them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The outcome of expanding one string. */
export interface ExpandResult {
  /** The expanded text; unset or malformed references are left as written. */
  readonly text: string;
  /** Names of referenced variables that are not set, in order, each once. */
  readonly missing: readonly string[];
  /** References that are not `${NAME}` with NAME a variable name, e.g. `${}` or an unclosed `${`. */
  readonly malformed: readonly string[];
  /** Whether the string was exactly one `${NAME}` reference and nothing else. */
  readonly whole: boolean;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Expands `${NAME}` references in `text` from `env`; `$${` gives a literal `${`. With `template`,
 * `text` is a `$variable` template and each value's `$` is written `$$` (a literal `$` there).
 * O(length).
 */
export function expandEnv(text: string, env: Environment, template = false): ExpandResult {
  let out = '';
  const missing: string[] = [];
  const malformed: string[] = [];
  let references = 0;
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) break;
    out += text.slice(i, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
    } else if (text.startsWith('${', dollar)) {
      const close = text.indexOf('}', dollar + 2);
      if (close === -1) {
        malformed.push(text.slice(dollar));
        out += text.slice(dollar);
        i = text.length;
        continue;
      }
      const name = text.slice(dollar + 2, close);
      references++;
      const value = NAME.test(name) ? env[name] : undefined;
      if (!NAME.test(name)) malformed.push(text.slice(dollar, close + 1));
      else if (value === undefined) {
        if (!missing.includes(name)) missing.push(name);
      }
      if (value === undefined) out += text.slice(dollar, close + 1);
      else out += template ? value.replaceAll('$', () => '$$') : value;
      i = close + 1;
    } else {
      out += '$';
      i = dollar + 1;
    }
  }
  out += text.slice(i);
  const whole = references === 1 && /^\$\{[^}]*\}$/.test(text);
  return { text: out, missing, malformed, whole };
}

/** Options of `interpolateEnv`. */
export interface InterpolateOptions {
  /**
   * Whether a string at `path` was written unquoted. An unquoted value that is exactly one
   * `${NAME}` takes the type its expansion reads as (`port: ${PORT}` is a number, as if the
   * value had been written in place); a quoted one stays a string unless `accepts` says otherwise.
   */
  readonly isPlainScalar?: (path: KeyPath) => boolean;
  /** Whether the string at `path` is a `$variable` template (its values' `$` are then escaped). */
  readonly isTemplate?: (path: KeyPath) => boolean;
  /**
   * Whether the key at `path` takes `value`. A quoted value that is exactly one `${NAME}` takes
   * the type its expansion reads as where the key takes that and not the text: inside `{ }` the
   * reference must be quoted, and `{ status: "${STATUS}" }` is then the number it says.
   */
  readonly accepts?: (path: KeyPath, value: unknown) => boolean;
  /**
   * Unset variables are not problems but read as stand-ins (stand-ins.ts): a value that is exactly
   * one `${NAME}` as a stand-in value the key takes, one inside text as the variable's text.
   */
  readonly standIns?: StandIns;
}

/**
 * Returns a copy of `value` with every string expanded; each unset variable and malformed
 * reference is reported at its string's node. Keys are not expanded.
 */
export function interpolateEnv(
  value: unknown,
  env: Environment,
  problems: ProblemCollector,
  options: InterpolateOptions = {},
): unknown {
  const walk = (v: unknown, path: KeyPath): unknown => {
    if (typeof v === 'string') return expandAt(v, path);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (isMapping(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) {
        // defineProperty: a key named "__proto__" must stay a key, not become the prototype.
        Object.defineProperty(out, k, {
          value: walk(item, [...path, k]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return v;
  };

  const expandAt = (text: string, path: KeyPath): unknown => {
    if (!text.includes('$')) return text;
    const template = text.includes('${') && (options.isTemplate?.(path) ?? false);
    const r = expandEnv(text, env, template);
    const standIns = options.standIns;
    if (standIns !== undefined && r.missing.length > 0 && r.malformed.length === 0) {
      if (!r.whole) {
        const filled = standIns.environment(env, (name) => standIns.inText(name, path));
        return expandEnv(text, filled, template).text;
      }
      return standIns.pick(r.missing[0]!, path, (v) => options.accepts?.(path, v) ?? true);
    }
    for (const name of r.missing) {
      problems.reject(path, 'SLUICE_E_CONFIG_ENV', `environment variable ${name} is not set`, {
        hint: `export ${name} before starting sluice, or write $\${${name}} for a literal \${${name}}`,
      });
    }
    for (const ref of r.malformed) {
      problems.reject(path, 'SLUICE_E_CONFIG_ENV', `${JSON.stringify(ref)} is not a variable reference`, {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the text shows the literal ${NAME} syntax.
        hint: 'write ${NAME} with NAME made of letters, digits and _, or $${ for a literal ${',
      });
    }
    if (r.missing.length > 0 || r.malformed.length > 0) return text;
    if (!r.whole) return r.text;
    const typed = typedScalar(r.text);
    if (options.isPlainScalar?.(path)) return typed;
    const accepts = options.accepts;
    if (typed !== r.text && accepts !== undefined && !accepts(path, r.text) && accepts(path, typed))
      return typed;
    return r.text;
  };

  return walk(value, []);
}

/** What an unquoted YAML scalar with this text would have been: a number, a boolean, or text. */
function typedScalar(text: string): unknown {
  if (/^[-+]?(?:\d+|\d*\.\d+)(?:[eE][-+]?\d+)?$/.test(text)) return Number(text);
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  return text;
}
