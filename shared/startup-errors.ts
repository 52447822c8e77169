/**
 * Why a process could not start, and the exit code that says so. Entry points (api/main.ts,
 * worker/main.ts, gateway/main.ts) check `instanceof StartupError` and exit with its code; the launcher
 * (scripts/start.ts) reads the code across the process boundary.
 */

/** Exit code of a process that could not start (or failed): the launcher restarts it. */
export const EXIT_FAILURE = 1;
/** Exit code of a process that cannot start on its configuration (EX_CONFIG): the launcher does not restart it. */
export const EXIT_CONFIG = 78;

/** A process cannot start; the message says why, `exitCode` is what its entry point exits with. */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}
