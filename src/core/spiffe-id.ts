/**
 * SPIFFE ids in X.509 certificates (an X509-SVID carries exactly one URI SAN, `spiffe://…`).
 * Node shows a certificate's SANs as one string, `DNS:a.test, URI:spiffe://example.org/x`, with
 * entries that contain separators quoted; a SPIFFE id never needs quoting (its characters are
 * letters, digits, `.`, `-`, `_` and `/`).
 */

const URI_SAN = /(?:^|, )URI:(spiffe:\/\/[^,\s"]+)/g;

/**
 * The SPIFFE id of a certificate's `subjectaltname`, or '' when it has none, or more than one
 * (not a valid SVID).
 */
export function spiffeIdOf(subjectAltName: string | undefined): string {
  if (subjectAltName === undefined || !subjectAltName.includes('URI:spiffe://')) return '';
  let found = '';
  for (const m of subjectAltName.matchAll(URI_SAN)) {
    if (found !== '') return '';
    found = m[1]!;
  }
  return found;
}
