/** HTTP syntax checks shared by header names, methods and header values in the config. */

/** RFC 9110 5.6.2 `token`: one or more tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What a header name may be made of, for hints. */
export const HEADER_NAME_HINT =
  "header names are letters, digits and !#$%&'*+-.^_`|~, without spaces or colons";

/** Whether `text` is an RFC 9110 token (valid as a method or header name). */
export function isHttpToken(text: string): boolean {
  return TOKEN.test(text);
}

/** Whether a header value holds a character that would split or truncate the header (CR, LF, NUL). */
export function hasForbiddenValueChar(value: string): boolean {
  return /[\r\n\0]/.test(value);
}
