/**
 * nginx values with `$variables` → sluice templates. sluice knows a handful of nginx's variables
 * (docs/config.md, Variables); a value using any other one cannot be carried over, and the caller
 * drops the directive with a warning naming the variable.
 */
import { isTemplateVariable } from '../../config/template.js';

/** What the caller knows about where the value is used. */
export interface TemplateContext {
  /** The server's first name, which `$server_name` stands for; `undefined` when it has none. */
  readonly serverName?: string | undefined;
  /** The port every listen of the server has, which `$server_port` stands for; `undefined` when they differ. */
  readonly serverPort?: number | undefined;
}

/** A translated value, or the variable that stopped it. */
export type TemplateResult = { readonly text: string } | { readonly error: string };

/** nginx variables sluice has under another name or as a constant. */
const RENAMED: Readonly<Record<string, string>> = {
  // The binary form only saves memory in nginx's zones; the value is the same address.
  binary_remote_addr: 'remote_addr',
};

/** Whether `text` uses any nginx variable. */
export function hasVariables(text: string): boolean {
  return /\$(\{\s*)?[A-Za-z0-9_]/.test(text);
}

/**
 * Rewrites `text` for sluice: `${name}` becomes `$name`, `$server_name` the server's name,
 * `$server_port` its port, and every other variable must be one sluice supports.
 */
export function toSluiceTemplate(text: string, ctx: TemplateContext = {}): TemplateResult {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) break;
    out += text.slice(i, dollar);
    const braced = /^\{([A-Za-z0-9_]+)\}/.exec(text.slice(dollar + 1));
    const bare = /^[A-Za-z0-9_]+/.exec(text.slice(dollar + 1));
    const name = braced?.[1] ?? bare?.[0];
    if (name === undefined) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const end = dollar + 1 + (braced ? braced[0].length : name.length);
    const lower = name.toLowerCase();
    if (/^\d+$/.test(name)) {
      return { error: `$${name} is a regex capture, which sluice has no equivalent of` };
    }
    let replacement: string;
    if (lower === 'server_name') {
      if (ctx.serverName === undefined) {
        return { error: '$server_name stands for no plain server name here' };
      }
      replacement = ctx.serverName;
    } else if (lower === 'server_port') {
      if (ctx.serverPort === undefined) {
        return { error: '$server_port stands for no one port here (the server listens on several)' };
      }
      replacement = String(ctx.serverPort);
    } else {
      const sluiceName = RENAMED[lower] ?? (lower.startsWith('http_') ? lower : name);
      if (!isTemplateVariable(sluiceName) || sluiceName === 'client_spiffe_id') {
        return { error: `sluice has no variable $${name}` };
      }
      replacement = `$${sluiceName}`;
      // `${host}name` has no sluice spelling: sluice reads `$hostname` as one variable.
      if (/^[A-Za-z0-9_]/.test(text.slice(end))) {
        return { error: `$\{${name}} is followed by letters, which sluice would read as part of the name` };
      }
    }
    out += replacement;
    i = end;
  }
  return { text: out + text.slice(i) };
}

/** The nginx variables `text` uses, as written (`$host`, `${uri}` → `host`, `uri`). */
export function variablesOf(text: string): string[] {
  return [...text.matchAll(/\$\{?([A-Za-z0-9_]+)\}?/g)].map((m) => m[1]!);
}
