/**
 * The worker-thread side of load-off-thread.ts: loads one config file and posts the result back.
 * A resolved config is plain data (no functions, maps or class instances), so it crosses the
 * thread boundary by structured clone unchanged, apart from being frozen (restored there).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile } from './load.js';

const { file, env, hostUsers } = workerData as { file: string; env: NodeJS.ProcessEnv; hostUsers: boolean };
parentPort?.postMessage(await loadConfigFile(file, env, { hostUsers }));
