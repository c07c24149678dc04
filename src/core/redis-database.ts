/**
 * The database number of a `state.redis` URL, found where ioredis looks for it (the path, `/3`,
 * else the query, `?db=3`) but read strictly. ioredis reads it with parseInt: `/abc` became NaN,
 * whose `SELECT NaN` (sent again after every reconnect, since NaN never equals the database it
 * holds) was an unhandled rejection that ended the process; `/3abc` became 3.
 */

/**
 * The largest database number taken: Redis's `databases` setting is a C int, and ioredis tracks
 * the selected database only while it fits 32 bits (`(x | 0) === x`).
 */
export const MAX_REDIS_DATABASE = 2_147_483_647;

/** A database number, or the text that is none. */
export type RedisDatabase =
  | { readonly ok: true; readonly db: number }
  | { readonly ok: false; readonly text: string };

/** The database `url` names: 0 when it names none. */
export function redisDatabase(url: URL): RedisDatabase {
  // As ioredis does: a path wins over the query, and of several `db` parameters the last counts.
  const text =
    url.pathname.length > 1 ? url.pathname.slice(1) : (url.searchParams.getAll('db').at(-1) ?? null);
  if (text === null) return { ok: true, db: 0 };
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_REDIS_DATABASE) return { ok: false, text };
  return { ok: true, db: Number(text) };
}
