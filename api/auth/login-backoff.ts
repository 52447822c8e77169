/**
 * Slows down password guessing per client: after `freeFailures` wrong passwords in a row, a client must
 * wait before its next attempt is even checked, and each further failure doubles the wait (up to
 * `maxDelayMs`). A right password resets the count. Attempts during a wait are refused at once (the
 * caller answers 429 with Retry-After) instead of being held open, so a guesser gains nothing from
 * parallel connections and the server holds no sleeping requests.
 *
 * Per process and in memory: the dashboard is an operator tool on one API replica's address; a guesser
 * that spreads over N replicas gets N times the attempts, still exponentially few.
 */
export interface LoginBackoffOptions {
  /** Wrong passwords in a row before any wait (typos). Default 3. */
  freeFailures?: number;
  /** The first wait, ms; it doubles with each further failure. Default 1000. */
  baseDelayMs?: number;
  /** The longest wait, ms. Default 300_000 (5 minutes). */
  maxDelayMs?: number;
  /** Clients remembered at most; the longest-idle are forgotten first. Default 10_000. */
  maxClients?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  /** Epoch ms before which the client's attempts are refused. */
  until: number;
}

export class LoginBackoff {
  private readonly clients = new Map<string, Entry>();
  private readonly freeFailures: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(o: LoginBackoffOptions = {}) {
    this.freeFailures = o.freeFailures ?? 3;
    this.baseDelayMs = o.baseDelayMs ?? 1000;
    this.maxDelayMs = o.maxDelayMs ?? 300_000;
    this.maxClients = o.maxClients ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  /** How long `client` must still wait before an attempt is checked, ms; 0 = check it now. */
  waitMs(client: string): number {
    const e = this.clients.get(client);
    return e ? Math.max(0, e.until - this.now()) : 0;
  }

  /** Records a wrong password. @returns the wait it imposes on the client's next attempt, ms. */
  failed(client: string): number {
    const e = this.clients.get(client) ?? { failures: 0, until: 0 };
    this.clients.delete(client); // re-inserted last: the Map's order is least recently failed first
    e.failures += 1;
    const over = e.failures - this.freeFailures;
    const delay = over <= 0 ? 0 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(over - 1, 30));
    e.until = this.now() + delay;
    this.clients.set(client, e);
    if (this.clients.size > this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    return delay;
  }

  /** Records a right password: the client starts afresh. */
  succeeded(client: string): void {
    this.clients.delete(client);
  }
}
