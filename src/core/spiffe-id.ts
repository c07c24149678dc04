/**
 * SPIFFE ids in X.509 certificates. An X.509-SVID carries exactly one URI SAN, and it is a SPIFFE
 * id (SPIFFE-ID spec section 2): `spiffe://` and a trust domain of `[a-z0-9._-]`, then an optional
 * path of non-empty segments of `[A-Za-z0-9._-]` (no `.` or `..` segment, no trailing `/`), with
 * no port, user info, query or fragment; 2048 bytes at most. A certificate that breaks any of this
 * is not an SVID and has no id.
 *
 * Node shows a certificate's SANs as one string, `DNS:a.test, URI:spiffe://example.org/x`; an
 * entry whose value holds a comma, a quote, a backslash or a control character is written as a
 * JSON string (`URI:"https://a.test/x,y"`), so splitting at `, ` outside quotes finds every entry.
 */

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** Longest SPIFFE id the spec allows, in bytes. */
const MAX_SPIFFE_ID_BYTES = 2048;

/** One `TYPE:value` entry of Node's `subjectaltname`, the value bare or a JSON string. */
const SAN_ENTRY = /([^:,"]+):("(?:[^"\\]|\\.)*"|[^,"]*)(?:, |$)/y;

/** Whether `id` is a SPIFFE id as an X.509-SVID may carry it. */
export function isSpiffeId(id: string): boolean {
  if (!SPIFFE_ID.test(id) || Buffer.byteLength(id) > MAX_SPIFFE_ID_BYTES) return false;
  // The character classes allow `.` and `..` as segments; the spec forbids them.
  return !id
    .slice('spiffe://'.length)
    .split('/')
    .slice(1)
    .some((segment) => segment === '.' || segment === '..');
}

/**
 * The SPIFFE id of a certificate's `subjectaltname`, or '' when it is not an X.509-SVID: no URI
 * SAN, more than one, or one that is not a valid SPIFFE id (a query, a fragment, a port...).
 */
export function spiffeIdOf(subjectAltName: string | undefined): string {
  if (subjectAltName === undefined || !subjectAltName.includes('URI:spiffe://')) return '';
  const uris = uriSans(subjectAltName);
  if (uris === null || uris.length !== 1) return '';
  const id = uris[0]!;
  return isSpiffeId(id) ? id : '';
}

/** The URI SANs of a `subjectaltname` string; null when it does not parse (then trust none). */
function uriSans(subjectAltName: string): string[] | null {
  const uris: string[] = [];
  SAN_ENTRY.lastIndex = 0;
  while (SAN_ENTRY.lastIndex < subjectAltName.length) {
    const m = SAN_ENTRY.exec(subjectAltName);
    if (m === null) return null;
    if (m[1] !== 'URI') continue;
    const raw = m[2]!;
    if (!raw.startsWith('"')) {
      uris.push(raw);
      continue;
    }
    try {
      uris.push(String(JSON.parse(raw)));
    } catch {
      return null;
    }
  }
  return uris;
}
