/**
 * Logs as JSON lines (pino): `time` in UTC ISO 8601, `level` as a word, `msg`. Application logs
 * and access lines of a process go through one `LineWriter` per destination: batched,
 * asynchronous, line-atomic across worker processes. An unwritable destination costs one error
 * line on stderr, never the process. `reopen()` serves SIGUSR1 after logrotate. The `pretty`
 * format (for development) goes through pino-pretty instead.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { ResolvedLog } from '../config/types.js';
import type { LineSink } from './access-log.js';
import { LineWriter } from './line-writer.js';

/** The application logger, where access lines go (none when `access: off`), and their lifecycle. */
export interface Loggers {
  readonly app: Logger;
  /** JSON format: the destination access lines are written to directly. */
  readonly accessSink: LineSink | null;
  /** Pretty format: access lines go through this logger instead. */
  readonly access: Logger | null;
  /** Reopens file destinations (SIGUSR1, logrotate); the files that could not be, each with why. */
  reopen(): readonly ReopenFailure[];
  /** Lines lost so far: the destination failed, or fell more than 16 MiB behind. */
  droppedLines(): number;
  /** Writes out everything buffered, synchronously (before exit). */
  flush(): void;
  /** Writes out everything queued (waiting at most 2 s for a slow destination) and stops. */
  close(): Promise<void>;
  /**
   * Takes a new `log:` config's level and format for the application logger (the primary, which
   * lives across reloads; workers are replaced instead). Access lines are not followed: only
   * loggers created with `access: off` use this.
   */
  follow(log: Pick<ResolvedLog, 'level' | 'format'>): void;
}

/** A log file that could not be opened again: its lines go on to the file open before. */
export interface ReopenFailure {
  readonly file: string;
  readonly reason: string;
}

/** How long closing waits for log writes in flight before writing the rest synchronously. */
const CLOSE_WAIT_MS = 2000;

/** Options shared by every sluice logger. */
export function loggerOptions(level: string): pino.LoggerOptions {
  return {
    level,
    messageKey: 'msg',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Never log credentials, wherever they appear in a logged object.
    redact: {
      paths: [
        'authorization',
        'cookie',
        'set-cookie',
        'token',
        '*.authorization',
        '*.cookie',
        '*.token',
        'headers.authorization',
        'headers.cookie',
        'headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
  };
}

/** Creates the loggers for a `log:` config. */
export function createLoggers(log: ResolvedLog): Loggers {
  const writers: LineWriter[] = [];
  const open = (target: number | string): LineWriter => {
    const w = new LineWriter(target, (err) => {
      // Serving goes on without logs; say so once per failure streak, not once per request.
      process.stderr.write(
        `sluice: cannot write logs to ${target === 1 ? 'stdout' : String(target)}: ${err.message}; serving continues\n`,
      );
    });
    writers.push(w);
    return w;
  };

  const pretty = (): DestinationStream =>
    pino.transport({
      target: 'pino-pretty',
      options: {
        destination: 1,
        translateTime: 'UTC:yyyy-mm-dd HH:MM:ss.l',
        ignore: 'pid',
        singleLine: true,
        // Only `err` holds an Error: the access line's `error` is a code, and pino-pretty's
        // default (err, error) printed it on a line of its own.
        errorLikeObjectKeys: ['err'],
      },
    }) as DestinationStream;

  let app: Logger;
  let access: Logger | null = null;
  let accessSink: LineSink | null = null;
  let format = log.format;
  let appStream: DestinationStream;
  /** The writer of JSON lines to stdout, once there is one: kept for the life of the loggers. */
  let stdoutWriter: LineWriter | null = null;
  if (log.format === 'pretty') {
    appStream = pretty();
    app = pino(loggerOptions(log.level), appStream);
    if (log.access === 'stdout') access = app.child({}, { level: 'info' });
    else if (log.access !== 'off')
      access = pino(loggerOptions('info'), safeOpen(open, log.access) ?? appStream);
  } else {
    const stdout = open(1);
    stdoutWriter = stdout;
    appStream = stdout;
    app = pino(loggerOptions(log.level), stdout);
    if (log.access === 'stdout') accessSink = stdout;
    else if (log.access !== 'off') accessSink = safeOpen(open, log.access) ?? stdout;
  }

  const flush = () => {
    for (const w of writers) w.flushSync();
  };
  return {
    app,
    access,
    accessSink,
    reopen: () => {
      const failures: ReopenFailure[] = [];
      for (const w of writers) {
        const err = w.reopen();
        if (err !== null) failures.push({ file: w.path ?? '', reason: err.message });
      }
      return failures;
    },
    droppedLines: () => writers.reduce((n, w) => n + w.dropped, 0),
    flush,
    close: async () => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      await Promise.race([Promise.all(writers.map((w) => w.drain())), deadline]);
      clearTimeout(timer);
      flush();
    },
    follow(next) {
      app.level = next.level;
      if (next.format === format) return;
      format = next.format;
      const old = appStream;
      // One stdout writer for the life of the loggers (each opens its own descriptor, and close()
      // flushes every writer): a switch back to JSON takes it up again.
      stdoutWriter ??= open(1);
      appStream = next.format === 'pretty' ? pretty() : stdoutWriter;
      // pino writes each line to the stream under this (exported) symbol: lines from now on take
      // the new format, also from those holding this logger (the ban manager, health checks).
      (app as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] = appStream;
      // The pretty transport's thread writes out what it has and ends.
      if (!(old instanceof LineWriter)) (old as unknown as { end(): void }).end();
    },
  };
}

/** Opens a log file; when it cannot be opened, says so and falls back to stdout. */
function safeOpen(open: (target: string) => LineWriter, path: string): LineWriter | null {
  try {
    return open(path);
  } catch (err) {
    process.stderr.write(
      `sluice: cannot open log file ${path}: ${(err as Error).message}; logging to stdout\n`,
    );
    return null;
  }
}
