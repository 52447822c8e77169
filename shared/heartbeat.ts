/** How often a worker process records that it is alive. */
export const HEARTBEAT_INTERVAL_MS = 5000;
/** A worker whose last heartbeat is older than this counts as gone. */
export const HEARTBEAT_TTL_MS = 15_000;
