/**
 * `$variable` templates in header values and redirect targets, nginx style. Parsed and checked
 * once at config load; `proxy/variables.ts` compiles the parts into a function per template.
 *
 * `$name` is a variable when `name` starts with a letter or `_`; `$$` is a literal `$`; a `$`
 * before anything else (a digit, a space, the end) is kept as it is.
 */
import { didYouMean } from '../core/did-you-mean.js';

/** The variables a template may use, besides `$http_<name>` (a request header, `-` as `_`). */
export const TEMPLATE_VARIABLES = [
  'remote_addr',
  'remote_net',
  'host',
  'scheme',
  'request_id',
  'request_uri',
  'args',
  'is_args',
  'proxy_add_x_forwarded_for',
  'client_spiffe_id',
] as const;

/** The prefix of request-header variables: `$http_x_user_id` reads `x-user-id`. */
export const HEADER_VARIABLE_PREFIX = 'http_';

/** One piece of a parsed template: literal text or a variable name (without `$`). */
export type TemplatePart = string | { readonly variable: string };

/** A parsed template, or why it is not one. */
export type ParsedTemplate =
  | { readonly parts: readonly TemplatePart[] }
  | { readonly error: string; readonly variable: string; readonly suggestion?: string };

const KNOWN = new Set<string>(TEMPLATE_VARIABLES);

/** Whether `name` (without `$`) is a variable templates can use. */
export function isTemplateVariable(name: string): boolean {
  return (
    KNOWN.has(name) ||
    (name.startsWith(HEADER_VARIABLE_PREFIX) &&
      /^[a-z0-9_]+$/.test(name.slice(HEADER_VARIABLE_PREFIX.length)))
  );
}

/** Splits a template into literal text and variables; the first unknown variable is an error. */
export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) break;
    literal += text.slice(i, dollar);
    const name = /^[A-Za-z_]\w*/.exec(text.slice(dollar + 1))?.[0];
    if (text[dollar + 1] === '$') {
      literal += '$';
      i = dollar + 2;
    } else if (name === undefined) {
      literal += '$';
      i = dollar + 1;
    } else {
      if (!isTemplateVariable(name)) {
        const lower = name.toLowerCase();
        const suggestion = isTemplateVariable(lower) ? lower : didYouMean(name, TEMPLATE_VARIABLES);
        const error = `unknown variable $${name}${suggestion === undefined ? '' : `; did you mean $${suggestion}?`}`;
        return suggestion === undefined ? { error, variable: name } : { error, variable: name, suggestion };
      }
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push({ variable: name });
      i = dollar + 1 + name.length;
    }
  }
  literal += text.slice(i);
  if (literal !== '') parts.push(literal);
  return { parts };
}
