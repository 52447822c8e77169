import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import { DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from '../shared/config.js';
import { guardConnections, type ConnectionGuardOptions } from './connection-guard.js';

export interface Listening {
  server: ServerType;
  url: string;
  port: number;
}

/** Serves `fetch` on host:port (port 0: a free one) with the service's HTTP server settings. */
export async function listen(
  fetch: (req: Request, env: unknown) => Promise<Response>,
  config: {
    host: string;
    port: number;
    keepAliveTimeoutMs?: number | undefined;
    unauthenticatedIdleTimeoutMs?: number | undefined;
    maxConnectionsPerAddress?: number | undefined;
    maxConnections?: number | undefined;
    onConnectionClosed?: ConnectionGuardOptions['onClose'];
  },
): Promise<Listening> {
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch, hostname: config.host, port: config.port }, () => resolve(s));
    s.once('error', reject);
  });
  // Idle keep-alive sockets stay open longer than the clients in front keep theirs (see
  // DEFAULT_KEEP_ALIVE_TIMEOUT_MS); the headers timeout must exceed it, or Node cuts a slow request's
  // headers on a reused socket first.
  const keepAliveMs = config.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  const http1 = server as ServerType & { keepAliveTimeout: number; headersTimeout: number };
  http1.keepAliveTimeout = keepAliveMs;
  http1.headersTimeout = keepAliveMs + 1000;
  // Connections that never authenticated are closed much sooner (connection-guard.ts).
  const stopGuard = guardConnections(server as Server, {
    unauthenticatedIdleMs: config.unauthenticatedIdleTimeoutMs ?? 10_000,
    maxPerAddress: config.maxConnectionsPerAddress ?? 1000,
    maxConnections: config.maxConnections ?? 0,
    onClose: config.onConnectionClosed,
  });
  server.once('close', stopGuard);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { server, url: `http://${host}:${port}`, port };
}
