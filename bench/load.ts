import { Agent, request } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../api/auth/sha256.js';

/** The dev credential (test/test) the service accepts outside production. */
export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
export const REGION = 'us-east-1';

export interface Answer {
  status: number;
  body: string;
}

/**
 * A lean HTTP/1.1 client (keep-alive, node:http) that signs every request with SigV4 exactly as the
 * AWS SDK does (`@smithy/signature-v4`, the SDK's own signer). Used where the client's own CPU cost
 * would otherwise limit the figure (GetClientCertificate req/s); the same client measures the bare
 * Hono handler, so the ratio compares servers, not clients.
 */
export class SignedClient {
  private agent: Agent;
  private readonly maxSockets: number;
  private readonly signer: SignatureV4;
  private readonly host: string;
  private readonly port: number;

  constructor(
    readonly baseUrl: string,
    maxSockets = 64,
    /** Whose requests these are (another account than the dev credential's: the mixed phase). */
    credentials: { accessKeyId: string; secretAccessKey: string } = CREDENTIALS,
  ) {
    this.signer = new SignatureV4({ service: 'apigateway', region: REGION, credentials, sha256: NodeSha256 });
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port || 80);
    this.maxSockets = maxSockets;
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  get(path: string): Promise<Answer> {
    return this.send('GET', path);
  }

  /** POST a JSON body, as the SDK sends GenerateClientCertificate. */
  post(path: string, body: unknown): Promise<Answer> {
    return this.send('POST', path, JSON.stringify(body));
  }

  private async send(method: string, path: string, body?: string): Promise<Answer> {
    const headers: Record<string, string> = { host: `${this.host}:${this.port}`, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const signed = await this.signer.sign({
      method,
      protocol: 'http:',
      hostname: this.host,
      port: this.port,
      path,
      query: {},
      headers,
      body,
    });
    return new Promise<Answer>((resolve, reject) => {
      const req = request(
        { agent: this.agent, host: this.host, port: this.port, method, path, headers: signed.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * Drops the kept-alive connections and opens new ones from now on: after the service was held still
   * (SIGSTOP while the raw bound is measured), its idle-connection timers fire the moment it resumes, and
   * a request sent on an old connection at that moment meets a closing socket ("socket hang up").
   */
  reconnect(): void {
    this.agent.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: this.maxSockets });
  }
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles of `values` (ms), rounded to 0.1 ms. */
export function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 10) / 10;
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { p50: r(at(50)), p95: r(at(95)), p99: r(at(99)), max: r(s[s.length - 1] ?? NaN), mean: r(mean) };
}

export interface ClosedLoopResult {
  /** Completions (successful) per second inside the measured window. */
  perSecond: number;
  ok: number;
  errors: number;
  /** Error answers by kind, e.g. `503 ServiceUnavailableException`. */
  errorKinds: Record<string, number>;
  latencyMs: Percentiles;
  windowMs: number;
  warmupMs: number;
  /** Epoch ms when the measured window started and ended. */
  windowStart: number;
  windowEnd: number;
}

export interface ClosedLoopOptions {
  /** Requests in flight at once; each client sends its next request when the previous one ends. */
  clients: number;
  /** Measured window, ms. */
  durationMs: number;
  /** The window starts once this many requests have completed (and `minWarmupMs` passed). */
  warmupRequests?: number;
  minWarmupMs?: number;
  /** Hard limit on the warm-up, ms. Default 60 s. */
  maxWarmupMs?: number;
  /** One request; throws (with a `kind` string as message) on failure. */
  send: () => Promise<void>;
  /** Called when the measured window opens and when it closes. */
  onWindow?: (edge: 'start' | 'end') => void;
}

/**
 * Runs `clients` closed loops of `send`, warms up, then counts the requests that complete inside a
 * window of `durationMs`. Loops stop when the window ends; requests still in flight finish but are
 * not counted. Bounded in time: it always ends.
 */
export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const started = Date.now();
  let completed = 0;
  let windowStart = 0;
  let windowEnd = 0;
  let stop = false;
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  const warmupRequests = o.warmupRequests ?? 0;
  const minWarmupMs = o.minWarmupMs ?? 0;
  const maxWarmupMs = o.maxWarmupMs ?? 60_000;

  const openWindowIfWarm = () => {
    if (windowStart) return;
    const elapsed = Date.now() - started;
    if ((completed >= warmupRequests && elapsed >= minWarmupMs) || elapsed >= maxWarmupMs) {
      windowStart = Date.now();
      windowEnd = windowStart + o.durationMs;
      o.onWindow?.('start');
    }
  };
  const ticker = setInterval(() => {
    openWindowIfWarm();
    if (windowEnd && Date.now() >= windowEnd && !stop) {
      stop = true;
      o.onWindow?.('end');
    }
  }, 20);

  const loop = async () => {
    while (!stop) {
      const t0 = performance.now();
      let kind: string | undefined;
      try {
        await o.send();
      } catch (err) {
        kind = err instanceof Error ? err.message : String(err);
      }
      const end = Date.now();
      completed++;
      if (windowStart && end >= windowStart && end <= windowEnd) {
        if (kind === undefined) {
          ok++;
          latencies.push(performance.now() - t0);
        } else {
          errors++;
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
      }
      // An error answer comes back at once: pause so a broken service does not spin the loop.
      if (kind !== undefined) await new Promise((r) => setTimeout(r, 50));
    }
  };
  await Promise.all(Array.from({ length: o.clients }, loop));
  clearInterval(ticker);
  const windowMs = windowEnd - windowStart;
  return {
    perSecond: Math.round((ok / (windowMs / 1000)) * 100) / 100,
    ok,
    errors,
    errorKinds,
    latencyMs: percentiles(latencies),
    windowMs,
    warmupMs: windowStart - started,
    windowStart,
    windowEnd,
  };
}
