/**
 * Request bodies: bounded in size and in time, read only when a handler asks (for signed routes, once
 * SigV4 has checked the credential and date), and answered as 499 when the client goes away.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { ApiError, PayloadTooLargeError } from '../shared/errors.js';
import { METHODS_WITHOUT_BODY, type AppEnv } from './context.js';

/** 408: the body did not arrive within its deadline. */
export class RequestTimeoutError extends ApiError {
  constructor(timeoutMs: number) {
    super(
      408,
      'RequestTimeoutException',
      `The request body did not arrive within ${timeoutMs} ms. Send the whole request at once, then retry.`,
    );
  }
}

/** nginx's status for a request whose client closed the connection before the answer. */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Limits every body to `maxBytes` and `timeoutMs` from the request's start, without reading it: a
 * `Content-Length` over the limit is a 413 at once; a chunked body is counted as a handler reads it, so
 * a request refused before its body is needed (a missing signature) never waits for it. Either
 * failure answers with `Connection: close`, as does any error answered before the body was read.
 */
export function guardBody(opts: { maxBytes: number; timeoutMs: number }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (METHODS_WITHOUT_BODY.has(c.req.method)) return next();
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get('content-length');
    if (declared !== null && !raw.headers.has('transfer-encoding') && Number(declared) > opts.maxBytes) {
      throw new PayloadTooLargeError(opts.maxBytes);
    }
    let received = 0;
    let timer: NodeJS.Timeout | undefined;
    const limited = raw.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        start(ctl) {
          timer = setTimeout(() => ctl.error(new RequestTimeoutError(opts.timeoutMs)), opts.timeoutMs);
          timer.unref();
        },
        transform(chunk, ctl) {
          received += chunk.byteLength;
          if (received > opts.maxBytes) ctl.error(new PayloadTooLargeError(opts.maxBytes));
          else ctl.enqueue(chunk);
        },
        flush() {
          clearTimeout(timer);
        },
      }),
    );
    c.req.raw = new Request(raw, { body: limited, duplex: 'half' } as RequestInit);
    try {
      await next();
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * Whether the client has gone: its socket closed, or its body was cut off, before the answer was sent.
 * Judged from the socket, never from an error's code (a Redis ECONNRESET is the server's problem).
 */
export function clientGone(c: Context<AppEnv>): boolean {
  const incoming = (c.env as HttpBindings | undefined)?.incoming;
  if (!incoming) return false;
  return incoming.socket?.destroyed === true || (incoming.destroyed && !incoming.complete);
}

/** Whether a body the client sent was left unread (so the connection must not be reused). */
export function bodyUnread(c: Context<AppEnv>): boolean {
  if (METHODS_WITHOUT_BODY.has(c.req.method)) return false;
  const incoming = (c.env as HttpBindings | undefined)?.incoming;
  if (incoming) return !incoming.complete;
  return false;
}
