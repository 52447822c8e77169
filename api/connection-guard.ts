/**
 * Connections before authentication: a connection that has not carried a request with a valid
 * signature is closed once idle for `unauthenticatedIdleMs` (its headers arriving slowly count as idle),
 * while an authenticated one keeps the 65 s keep-alive the SDKs' pools need; and one client address
 * holds at most `maxPerAddress` connections (more are closed at once), so idle or trickling sockets
 * from one place cannot use up the process's file descriptors. In all, the process holds at most
 * `maxConnections`: from nine tenths of it on, each new connection closes one idle connection (one
 * that never authenticated before one that did, the longest idle first), so a new client is still
 * answered near the descriptor limit; at the cap with nothing idle, the new connection is closed at once.
 * A connection whose first request has not arrived yet counts as idle (idle since it was accepted).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';

const AUTHENTICATED = Symbol('authenticated');
const FAILED = Symbol('failed authentication');
type Marked = Socket & { [AUTHENTICATED]?: boolean; [FAILED]?: boolean };

/** Called by the authenticate middleware once a request on `socket` has a valid signature. */
export function markAuthenticated(socket: Socket | undefined): void {
  if (!socket) return;
  (socket as Marked)[AUTHENTICATED] = true;
  (socket as Marked)[FAILED] = false;
}

/**
 * Called when a request on `socket` was refused before authentication (a bound or SigV4): until a
 * request on it authenticates, its requests are the ones a spent failure budget holds back
 * (pre-auth.ts), not those of other connections from the same address.
 */
export function markFailed(socket: Socket | undefined): void {
  if (socket) (socket as Marked)[FAILED] = true;
}

/** Whether the last request on `socket` that was judged failed authentication. */
export function lastFailed(socket: Socket | undefined): boolean {
  return socket !== undefined && (socket as Marked)[FAILED] === true;
}

interface State {
  address: string;
  inFlight: number;
  idleSince: number;
}

/**
 * Why the guard closed a connection (the label of `http_connections_closed_total`): `max_connections`, a
 * new one at MAX_CONNECTIONS with nothing idle to close; `idle_evicted`, an idle one closed near it to
 * make room; `per_address`, a new one over MAX_CONNECTIONS_PER_ADDRESS; `unauthenticated_idle`, one
 * that never authenticated, idle past UNAUTHENTICATED_IDLE_TIMEOUT_MS.
 */
export const CONNECTION_CLOSE_REASONS = [
  'max_connections',
  'idle_evicted',
  'per_address',
  'unauthenticated_idle',
] as const;
export type ConnectionCloseReason = (typeof CONNECTION_CLOSE_REASONS)[number];

const LOGGED_REASONS: Partial<Record<ConnectionCloseReason, string>> = {
  max_connections: 'a new connection was closed at MAX_CONNECTIONS: every connection is busy',
  idle_evicted: 'idle connections were closed near MAX_CONNECTIONS to make room for new ones',
  per_address: 'connections over MAX_CONNECTIONS_PER_ADDRESS were closed',
};

/**
 * Counts every close with `count`, and logs the ones an operator should hear of (all but the idle
 * timeout's) at warn, at most one line per reason every `intervalMs`: the first at once, each later one
 * with the closes since the line before (`closed`), so a flood of connections is not a flood of lines.
 */
export function reportConnectionCloses(
  log: Logger,
  count: (reason: ConnectionCloseReason) => void,
  intervalMs = 60_000,
  now: () => number = Date.now,
): (reason: ConnectionCloseReason, detail: { connections: number; address: string }) => void {
  const last = new Map<ConnectionCloseReason, { at: number; pending: number }>();
  return (reason, detail) => {
    count(reason);
    const msg = LOGGED_REASONS[reason];
    if (!msg) return;
    const s = last.get(reason) ?? { at: -Infinity, pending: 0 };
    last.set(reason, s);
    s.pending += 1;
    const t = now();
    if (t - s.at < intervalMs) return;
    log.warn({ reason, closed: s.pending, ...detail }, msg);
    s.at = t;
    s.pending = 0;
  };
}

export interface ConnectionGuardOptions {
  /** Idle time after which a connection that never authenticated is closed, ms; 0 = never. */
  unauthenticatedIdleMs: number;
  /** Connections one client address may hold at once; 0 = no limit. */
  maxPerAddress: number;
  /** Connections the process holds at once; 0 = no limit. */
  maxConnections?: number;
  /** Told of each connection the guard closes (reportConnectionCloses). */
  onClose?: (reason: ConnectionCloseReason, detail: { connections: number; address: string }) => void;
}

const isAuthenticated = (socket: Socket) => (socket as Marked)[AUTHENTICATED] === true;

/** The idle connection to close first: never authenticated before authenticated, longest idle first. */
function evictionCandidate(sockets: Map<Socket, State>): Socket | undefined {
  let best: Socket | undefined;
  let bestKey: [number, number] = [2, Infinity];
  for (const [socket, s] of sockets) {
    if (s.inFlight > 0) continue;
    const key: [number, number] = [isAuthenticated(socket) ? 1 : 0, s.idleSince];
    if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1]))
      [best, bestKey] = [socket, key];
  }
  return best;
}

/** Watches `server`'s connections; returns a stop function. */
export function guardConnections(server: Server, o: ConnectionGuardOptions): () => void {
  const sockets = new Map<Socket, State>();
  const perAddress = new Map<string, number>();
  const closed = (reason: ConnectionCloseReason, address: string) =>
    o.onClose?.(reason, { connections: sockets.size, address });
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const n = (perAddress.get(address) ?? 0) + 1;
    if (o.maxPerAddress > 0 && n > o.maxPerAddress) {
      socket.destroy();
      closed('per_address', address);
      return;
    }
    const cap = o.maxConnections ?? 0;
    if (cap > 0 && sockets.size + 1 > cap - Math.max(1, Math.floor(cap / 10))) {
      const idle = evictionCandidate(sockets);
      if (idle) {
        const idleAddress = sockets.get(idle)!.address;
        idle.destroy();
        sockets.delete(idle);
        closed('idle_evicted', idleAddress);
      } else if (sockets.size + 1 > cap) {
        socket.destroy();
        closed('max_connections', address);
        return;
      }
    }
    perAddress.set(address, n);
    sockets.set(socket, { address, inFlight: 0, idleSince: Date.now() });
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  server.on('request', (req, res) => {
    const s = sockets.get(req.socket);
    if (!s) return;
    s.inFlight += 1;
    res.once('close', () => {
      s.inFlight -= 1;
      s.idleSince = Date.now();
    });
  });
  if (o.unauthenticatedIdleMs <= 0) return () => undefined;
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, s] of sockets) {
        if (s.inFlight > 0 || isAuthenticated(socket) || socket.destroyed) continue;
        if (now - s.idleSince >= o.unauthenticatedIdleMs) {
          socket.destroy();
          closed('unauthenticated_idle', s.address);
        }
      }
    },
    Math.max(50, Math.min(1000, o.unauthenticatedIdleMs / 4)),
  );
  sweep.unref();
  return () => clearInterval(sweep);
}
