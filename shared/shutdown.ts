import type { Logger } from './logger.js';

/**
 * Installs SIGTERM/SIGINT handlers that run `close` once, with a hard-exit timer; a second signal
 * forces exit at once. Only entry points call this.
 */
export function installShutdown(log: Logger, hardTimeoutMs: number, close: () => Promise<void>): void {
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    log.info({ signal, hardTimeoutMs }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ hardTimeoutMs }, 'shutdown took too long: exiting');
      process.exit(1);
    }, hardTimeoutMs);
    timer.unref();
    close().then(
      () => {
        log.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Started by the `npm start` launcher: stop when it goes away, however it ended.
  if (process.send) process.once('disconnect', () => onSignal('SIGTERM'));
}
