/**
 * undici, loaded on first use. A worker whose targets are plain http never needs it (sluice's
 * own client, proxy/h1-client.ts, carries those requests), and loading it costs 19 MB of RSS per
 * process (`require('undici')`: 39 → 58 MB on Node 20). https targets, Upgrade requests, streamed
 * bodies, health checks and the egress proxy load it when they first run.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);
let undiciModule: typeof Undici | null = null;

/** The undici module. */
export function undici(): typeof Undici {
  undiciModule ??= load('undici') as typeof Undici;
  return undiciModule;
}
