import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * Paths pino replaces with "[redacted]". Key material should never reach a logger at all;
 * this is the second line of defence.
 */
export const REDACT_PATHS = [
  'privateKey',
  'privateKeyPem',
  '*.privateKey',
  '*.privateKeyPem',
  'encryptedKey',
  '*.encryptedKey',
  'masterKey',
  '*.masterKey',
  'secretAccessKey',
  '*.secretAccessKey',
  'req.headers.authorization',
  'headers.authorization',
];

const options = (level: string, name: string): pino.LoggerOptions => ({
  name,
  level,
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

/** The one root logger of a process, writing JSON lines; components take children of it. */
export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino(
    options(level, name),
    // Default: stdout written asynchronously. A synchronous write is one syscall per line, i.e. per
    // request; async, lines logged while a write is in flight go out together in the next one.
    // sonic-boom flushes what is buffered on process exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * What `auto` means: pretty lines only on a terminal outside production. JSON whenever stdout is a
 * pipe or a file (log shippers, `docker logs`, tests) and under NODE_ENV=production.
 */
export function resolveLogFormat(
  format: Config['logFormat'],
  nodeEnv: string,
  stdoutIsTTY: boolean,
): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return stdoutIsTTY && nodeEnv !== 'production' ? 'pretty' : 'json';
}

/**
 * The root logger of a service process (API, worker, `npm start`'s launcher), in the format LOG_FORMAT
 * and the terminal call for. Pretty lines come from pino-pretty as a pino transport (a worker thread,
 * so formatting costs the event loop nothing); redaction happens before, as for JSON.
 */
export function createServiceLogger(
  config: Pick<Config, 'logLevel' | 'logFormat' | 'nodeEnv'>,
  name: string,
): Logger {
  if (resolveLogFormat(config.logFormat, config.nodeEnv, process.stdout.isTTY === true) === 'json') {
    return createLogger(config.logLevel, name);
  }
  return pino({
    ...options(config.logLevel, name),
    transport: {
      target: 'pino-pretty',
      options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l', singleLine: false },
    },
  });
}
