import { spawn } from 'node:child_process';
import type { Logger } from '../shared/logger.js';

/** libuv's thread pool size when UV_THREADPOOL_SIZE is not set. */
export const LIBUV_DEFAULT_THREADPOOL = 4;

/**
 * libuv threads a worker process needs: one per concurrent job (each waits on a native key
 * generation), one for the key pool's refill, and one left for fs, dns and zlib, so that neither
 * waits behind a 200 ms key generation.
 */
export function requiredThreadpoolSize(concurrency: number, refillParallelism = 1): number {
  return Math.max(LIBUV_DEFAULT_THREADPOOL, concurrency + refillParallelism + 1);
}

/** The pool size this process got: libuv reads UV_THREADPOOL_SIZE once, clamped to 1..1024. */
export function currentThreadpoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : LIBUV_DEFAULT_THREADPOOL;
}

/**
 * When this process's libuv pool is smaller than `needed`, runs this same entry point again as a
 * child with UV_THREADPOOL_SIZE set, forwards SIGTERM/SIGINT to it and exits with its code.
 *
 * Why a child: libuv sizes its pool once, on first use, and with ESM (and tsx) the module loader has
 * already used it before the first line of main.ts runs, so setting process.env here is too late.
 * The child sees a large enough pool and does not relaunch again.
 *
 * @returns true when a child was started (the caller must not start the worker itself).
 */
export function relaunchWithThreadpool(needed: number, log: Logger): boolean {
  const current = currentThreadpoolSize();
  if (current >= needed) return false;
  log.info(
    { UV_THREADPOOL_SIZE: current, needed },
    'libuv thread pool too small for WORKER_CONCURRENCY: relaunching with a larger one',
  );
  // The IPC channel tells the child when this process is gone (even by SIGKILL), so it never outlives it.
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, UV_THREADPOOL_SIZE: String(needed) },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  // Started by the `npm start` launcher: pass its going away on.
  if (process.send) process.once('disconnect', () => forward('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  child.on('error', (err) => {
    log.fatal({ err }, 'could not relaunch the worker');
    process.exit(1);
  });
  return true;
}
