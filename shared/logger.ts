import { pino, type Logger } from 'pino';

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

/** The one root logger of a process; components take children of it. */
export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Default: stdout written asynchronously. A synchronous write is one syscall per line, i.e. per
    // request; async, lines logged while a write is in flight go out together in the next one.
    // sonic-boom flushes what is buffered on process exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
