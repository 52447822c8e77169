import type { ServerType } from '@hono/node-server';
import { ServiceUnavailableError } from '../shared/errors.js';
import { withTimeout } from '../shared/timeout.js';
import { errorResponse } from './app.js';

type Fetch = (req: Request, env: unknown) => Response | Promise<Response>;
type NodeServer = ServerType & { closeIdleConnections?: () => void; closeAllConnections?: () => void };

/**
 * The 503-while-closing behaviour. Once {@link close} starts, requests still arriving on kept-alive
 * connections are refused with a 503 (a load balancer retries them elsewhere), and every answer
 * closes its connection, so the server really empties instead of serving keep-alive clients forever.
 */
export class Draining {
  private draining = false;
  private active = 0;
  private onIdle: (() => void) | undefined;

  constructor(private readonly app: Fetch) {}

  /** Requests being answered now. */
  get inFlight(): number {
    return this.active;
  }

  /** The app's fetch, counted, and refused once draining. */
  readonly fetch = async (req: Request, env: unknown): Promise<Response> => {
    if (this.draining) {
      const res = errorResponse(
        new ServiceUnavailableError('This server is shutting down. Retry the request.', 1),
      );
      res.headers.set('connection', 'close');
      return res;
    }
    this.active += 1;
    try {
      const res = await this.app(req, env);
      if (this.draining) {
        try {
          res.headers.set('connection', 'close');
        } catch {
          // immutable headers: node still closes the idle connection below
        }
      }
      return res;
    } finally {
      this.active -= 1;
      if (this.active === 0) this.onIdle?.();
    }
  };

  /**
   * Stops listening, lets in-flight requests finish (at most `timeoutMs`, then cuts their
   * connections) and waits for the server to close (bounded).
   */
  async close(server: ServerType, timeoutMs: number): Promise<void> {
    const node = server as NodeServer;
    this.draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadline = Date.now() + timeoutMs;
    const idle = new Promise<void>((resolve) => {
      this.onIdle = resolve;
      if (this.active === 0) resolve();
    });
    // Idle keep-alive connections would hold close() open forever; sweep them until all are gone.
    node.closeIdleConnections?.();
    const sweeper = setInterval(() => node.closeIdleConnections?.(), 100);
    await withTimeout(idle, timeoutMs);
    await withTimeout(closed, Math.min(1000, deadline - Date.now()));
    clearInterval(sweeper);
    node.closeAllConnections?.();
    await withTimeout(closed, 1000);
  }
}
