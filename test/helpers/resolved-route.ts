import type { ResolvedRoute } from '../../src/config/types.js';

/** A resolved route answering its own name, with no conditions beyond `path` unless `extra` sets them. */
export const resolvedRoute = (
  name: string,
  path: ResolvedRoute['path'],
  extra: Partial<ResolvedRoute> = {},
): ResolvedRoute => ({
  name,
  path,
  methods: null,
  headers: [],
  action: { kind: 'respond', status: 200, body: name, headers: [] },
  guards: { access: null, rateLimit: null, ban: null },
  maxBody: null,
  ...extra,
});
