import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import type { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { clientTlsOptions } from '../shared/client-tls.js';
import { DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from '../shared/config.js';
import type { KeyVault } from '../shared/crypto/key-vault.js';
import { NotFoundError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { checkHost, forwardTarget, normaliseHost, sanitiseIdentity, type Refusal } from './request-target.js';
import { StartupError } from '../shared/startup-errors.js';

/** Thrown by {@link createGateway} when the gateway cannot start; the message says why. */
export class GatewayStartError extends StartupError {
  override name = 'GatewayStartError';
}

export interface GatewayOptions {
  store: ClientCertificateStore;
  vault: KeyVault;
  accountId: string;
  region: string;
  /** The client certificate the gateway presents to the target. */
  clientCertificateId: string;
  /** `https://host:port[/base]`: requests go to the base path plus their own path and query. */
  target: URL;
  /** PEM bundle the target's certificate is verified against; undefined: the system's CAs. */
  targetCa?: string | undefined;
  log: Logger;
  /** How often the gateway checks that its certificate still exists, ms (default 5000). */
  refreshIntervalMs?: number;
  /** How long the target may take to answer before the gateway answers 504, ms (default 29 000, as API Gateway). */
  timeoutMs?: number;
  /** Sockets kept to the target at most (default 256). */
  maxSockets?: number;
  /** `Host` values (`host:port`) the gateway answers; default: the address it listens on. */
  allowedHosts?: string[] | undefined;
}

export interface Gateway {
  server: Server;
  /** Starts listening; resolves with the gateway's own URL (`http://host:port`). */
  listen(port: number, host: string): Promise<string>;
  /** Re-reads the certificate's record now (the timer does it every refreshIntervalMs). */
  refresh(): Promise<void>;
  /** Whether the certificate has been found deleted. */
  readonly deleted: boolean;
  /** The id of the certificate presented now. */
  readonly clientCertificateId: string;
  /**
   * Presents certificate `id` from now on (rotation): its key is opened first, then requests that start
   * after this resolves use new connections with it, while requests in flight finish on their old
   * connections, which are then closed. Nothing is dropped.
   * @throws GatewayStartError when `id` does not exist (the certificate in use stays).
   */
  use(id: string): Promise<void>;
  /** Stops listening and the refresh timer, and closes the sockets to the target. */
  close(): Promise<void>;
}

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1, and the pre-standard ones proxies still see): they
 * describe one connection, so a proxy never forwards them. Headers a `Connection` header names are too.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `rawHeaders` (name, value, name, value...) less the hop-by-hop ones and those `Connection` names. */
function endToEnd(raw: string[]): string[] {
  const named = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!named.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * An HTTP reverse proxy that forwards every request to `target` over TLS, presenting client
 * certificate `clientCertificateId` with its private key, as API Gateway does when it calls an
 * integration backend. The key is opened once with the vault (see {@link clientTlsOptions}) and lives
 * only in this process's memory, in the keep-alive agent's TLS options; it is never logged.
 *
 * Every `refreshIntervalMs` the gateway reads the record again: once the certificate is deleted it
 * drops its sockets to the target (so the certificate is no longer presented) and answers 502 with a
 * JSON message naming the id. Tag and description changes do not matter; a Redis failure during a
 * refresh changes nothing (the certificate was not deleted, as far as anyone knows).
 *
 * @throws GatewayStartError when the certificate does not exist in `accountId`/`region`.
 */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { store, accountId, region, target } = opts;
  let id = opts.clientCertificateId;
  if (target.protocol !== 'https:') {
    throw new GatewayStartError(`the target must be an https:// URL, got ${target.href}`);
  }
  const baseLog = opts.log.child({ component: 'gateway' });
  let log = baseLog.child({ clientCertificateId: id });
  const tenant = { accountId, region };
  const basePath = target.pathname.replace(/\/+$/, '');
  const targetHost = target.host;

  const open = async (which = id) => {
    try {
      return await clientTlsOptions({ store, vault: opts.vault, accountId, region, id: which });
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new GatewayStartError(
          `client certificate ${which} was not found in account ${accountId}, region ${region}`,
        );
      }
      throw err;
    }
  };
  const newAgent = (tls: { key: string; cert: string }) =>
    new Agent({
      keepAlive: true,
      maxSockets: opts.maxSockets ?? 256,
      maxFreeSockets: opts.maxSockets ?? 256,
      scheduling: 'lifo',
      ...tls,
      ...(opts.targetCa !== undefined ? { ca: opts.targetCa } : {}),
    });

  let tls = await open();
  let agent: Agent | undefined = newAgent(tls);
  let deleted = false;
  /** Agents of certificates no longer presented, until their last request has finished. */
  const retired = new Set<Agent>();
  const retire = (old: Agent) => {
    // Sockets freed from now on are closed instead of kept (Node's agent compares its free list with
    // maxFreeSockets when a request ends); idle ones now. Requests in flight finish undisturbed.
    old.maxFreeSockets = 0;
    for (const list of Object.values(old.freeSockets)) for (const s of list ?? []) s.destroy();
    retired.add(old);
    const timer = setTimeout(
      () => {
        old.destroy();
        retired.delete(old);
      },
      (opts.timeoutMs ?? 29_000) + 1000,
    );
    timer.unref();
  };

  const refresh = async () => {
    const checking = id;
    let record;
    try {
      record = await store.get(tenant, checking);
    } catch (err) {
      log.warn({ err }, 'could not check the client certificate: still presenting it');
      return;
    }
    // Switched to another certificate meanwhile (use()): this answer is about one no longer presented.
    if (checking !== id) return;
    if (record === undefined) {
      if (!deleted) {
        deleted = true;
        agent?.destroy();
        agent = undefined;
        log.warn('the client certificate was deleted: no longer presenting it, answering 502');
      }
      return;
    }
    if (deleted || record.pemEncodedCertificate !== tls.cert) {
      // Not expected (ids are never reused), but a record that is back must be presented as it is now.
      tls = await open();
      agent?.destroy();
      agent = newAgent(tls);
      deleted = false;
      log.info('client certificate (re)loaded');
    }
  };
  const refreshSafely = () =>
    refresh().catch((err: unknown) => log.error({ err }, 'client certificate refresh failed'));
  const timer = setInterval(refreshSafely, opts.refreshIntervalMs ?? 5000);
  timer.unref();

  const ERROR_TYPES: Record<number, string> = {
    400: 'BadRequestException',
    405: 'MethodNotAllowedException',
    421: 'MisdirectedRequestException',
    504: 'GatewayTimeoutException',
  };
  const fail = (res: ServerResponse, status: number, message: string) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({ message });
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-amzn-errortype': ERROR_TYPES[status] ?? 'BadGatewayException',
    });
    res.end(body);
  };
  // Set from opts, or once listening (the listen address); requests before that cannot arrive.
  let allowedHosts = new Set((opts.allowedHosts ?? []).map(normaliseHost));
  const refuse = (req: IncomingMessage, res: ServerResponse, r: Refusal) => {
    log.info({ method: req.method, status: r.status, reason: r.message }, 'request refused');
    req.resume();
    res.shouldKeepAlive = false;
    fail(res, r.status, r.message);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const current = agent;
    if (current === undefined) {
      req.resume();
      fail(res, 502, `Client certificate ${id} was deleted: the gateway no longer presents it`);
      return;
    }
    const hostRefused = checkHost(req.headers.host, allowedHosts);
    if (hostRefused) return refuse(req, res, hostRefused);
    const path = forwardTarget(req.method, req.url, basePath);
    if (typeof path !== 'string') return refuse(req, res, path);
    // Identity headers are the gateway's to set, never the client's (request-target.ts).
    const headers = sanitiseIdentity(endToEnd(req.rawHeaders), {
      address: req.socket.remoteAddress,
      host: req.headers.host!,
    });
    // Host names the target, as for any reverse proxy (and as the target's virtual hosts expect).
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.toLowerCase() === 'host') headers[i + 1] = targetHost;
    }
    const upstream = request({
      protocol: 'https:',
      hostname: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || 443,
      servername: /^[\d.]+$|:/.test(target.hostname) ? undefined : target.hostname,
      method: req.method,
      path,
      headers,
      agent: current,
      timeout: opts.timeoutMs ?? 29_000,
    });
    upstream.setNoDelay(true);
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEnd(up.rawHeaders));
      pipeline(up, res, (err) => {
        if (err) log.debug({ err: err.message }, 'response stream ended early');
      });
    });
    upstream.on('timeout', () => {
      upstream.destroy(new Error('timeout'));
      fail(res, 504, 'Endpoint request timed out');
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // Already answered (the 504 above): let that answer finish.
      if (res.writableEnded) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // The certificate was found deleted while this request was on one of its sockets (refresh()
      // destroys them): that, not the reset it caused, is why the request failed.
      if (deleted && agent === undefined) {
        fail(res, 502, `Client certificate ${id} was deleted: the gateway no longer presents it`);
        return;
      }
      log.warn({ err: err.message, code: err.code }, 'request to the target failed');
      fail(res, 502, `The gateway could not reach ${target.origin}: ${err.code ?? err.message}`);
    });
    // A client that goes away takes the request to the target with it.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    pipeline(req, upstream, (err) => {
      if (err) upstream.destroy();
    });
  };

  const server = createServer(handle);
  // CONNECT would make the gateway a tunnel to anywhere: answered 405 and closed.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    log.info({ method: 'CONNECT' }, 'request refused');
    const body = JSON.stringify({ message: 'CONNECT is not forwarded: this gateway is not a forward proxy' });
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\nx-amzn-errortype: MethodNotAllowedException\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    void req;
  });
  // Clients (load balancers, SDK agents) keep idle sockets longer than Node's 5 s default.
  server.keepAliveTimeout = DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = DEFAULT_KEEP_ALIVE_TIMEOUT_MS + 1000;

  return {
    server,
    get deleted() {
      return deleted;
    },
    get clientCertificateId() {
      return id;
    },
    async use(next) {
      const nextTls = await open(next);
      const previous = { id, agent };
      tls = nextTls;
      id = next;
      agent = newAgent(nextTls);
      deleted = false;
      if (previous.agent) retire(previous.agent);
      log = baseLog.child({ clientCertificateId: id });
      log.info(
        { previous: previous.id, serial: new X509Certificate(nextTls.cert).serialNumber },
        'now presenting another client certificate (requests in flight finish with the previous one)',
      );
    },
    refresh,
    async listen(port, host) {
      server.listen(port, host);
      await once(server, 'listening');
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      if (!opts.allowedHosts?.length) {
        allowedHosts = new Set([`${h}:${a.port}`]);
        if (a.address === '127.0.0.1' || a.address === '::1') allowedHosts.add(`localhost:${a.port}`);
      }
      return `http://${h}:${a.port}`;
    },
    async close() {
      clearInterval(timer);
      const closed = server.listening ? once(server, 'close') : Promise.resolve();
      server.close();
      server.closeIdleConnections();
      agent?.destroy();
      for (const a of retired) a.destroy();
      await closed;
    },
  };
}
