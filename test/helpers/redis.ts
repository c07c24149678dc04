/** A throwaway redis-server for tests: no persistence, loopback only, on a port the test picks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { waitForPort } from './cli.js';

/** Starts redis-server on 127.0.0.1:`port` with its working directory in `dir`. */
export async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(new Error(`cannot run redis-server (apt-get install redis-server): ${err.message}`)),
    ),
  );
  await Promise.race([waitForPort(port), failed]);
  return child;
}

/** SIGKILLs it (as a crash would) and waits for it to be gone. */
export async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}
