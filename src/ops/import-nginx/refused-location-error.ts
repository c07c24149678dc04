/**
 * Locations the import cannot carry over and cannot drop: each refuses, redirects or limits some
 * requests in nginx, and sluice cannot match the same paths, so without it those requests would
 * reach another route and be served. The import stops rather than be more open than nginx.
 */
import type { NginxDirective } from './ast.js';

/** One such location, with why it cannot be matched. */
export interface RefusedLocation {
  readonly directive: NginxDirective;
  readonly reason: string;
}

/** Every location of the file that stops the import, each as `FILE:LINE:COL: error: ...`. */
export class RefusedLocationError extends Error {
  override readonly name = 'RefusedLocationError';
  readonly locations: readonly RefusedLocation[];

  constructor(locations: readonly RefusedLocation[]) {
    super(`${locations.length} location(s) refuse requests that sluice cannot match`);
    this.locations = locations;
  }

  /** One line per location: `FILE:LINE:COL: error: message (hint: ...)`. */
  format(): string {
    return this.locations
      .map(({ directive: d, reason }) => {
        const where = `${d.file}:${d.line}:${d.col}`;
        return `${where}: error: location ${d.args.join(' ')}: ${reason}; nginx refuses, redirects or limits requests here, and without this location they would reach another route, so nothing is imported (hint: write the regex without that construct, or remove the location to import the rest without it)`;
      })
      .join('\n');
  }
}
