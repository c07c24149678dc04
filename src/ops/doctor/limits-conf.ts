/** Parsing pam_limits files (`/etc/security/limits.conf`, `limits.d/*.conf`) for `nofile` lines. */
import type { LimitsConfEntry } from './host-facts.js';

/**
 * The `nofile` entries of one limits.conf text (`<domain> <type> <item> <value>`), in order.
 * Comments (`#` to the end of the line) and lines that are not four fields are skipped, as
 * pam_limits skips them.
 */
export function parseLimitsConf(text: string, file: string): LimitsConfEntry[] {
  const entries: LimitsConfEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    if (fields.length !== 4) continue;
    const [domain, type, item, value] = fields as [string, string, string, string];
    if (item.toLowerCase() !== 'nofile') continue;
    entries.push({ file, domain, type, value });
  }
  return entries;
}
