/**
 * One error model: each AWS error type is a class carrying its HTTP status and a message that is
 * safe to show the caller. Internal causes go to the log, never to the wire.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    /** Seconds the caller should wait before retrying; sent as `Retry-After`. */
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = type;
  }

  /** The AWS REST-JSON wire format: status, `x-amzn-ErrorType`, body `{"message"}`. */
  toWire(): { status: number; headers: Record<string, string>; body: { message: string } } {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amzn-errortype': this.type,
    };
    if (this.retryAfterSeconds !== undefined) headers['retry-after'] = String(this.retryAfterSeconds);
    return { status: this.status, headers, body: { message: this.message } };
  }
}

export class BadRequestError extends ApiError {
  constructor(message: string) {
    super(400, 'BadRequestException', message);
  }
}

export class NotFoundError extends ApiError {
  constructor(message: string) {
    super(404, 'NotFoundException', message);
  }
}

export class PayloadTooLargeError extends ApiError {
  constructor(limitBytes: number) {
    super(413, 'PayloadTooLargeException', `Request body must not exceed ${limitBytes} bytes`);
  }
}

export class MethodNotAllowedError extends ApiError {
  constructor(method: string, path: string) {
    super(405, 'MethodNotAllowedException', `Method ${method} is not allowed on ${path}`);
  }
}

export class LimitExceededError extends ApiError {
  constructor(message: string, retryAfterSeconds?: number) {
    super(429, 'LimitExceededException', message, retryAfterSeconds);
  }
}

export class TooManyRequestsError extends ApiError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'TooManyRequestsException', message, retryAfterSeconds);
  }
}

/** No SigV4 `Authorization` header nor presigned query: AWS answers 403, not 401. */
export class MissingAuthenticationTokenError extends ApiError {
  constructor() {
    super(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
}

/** The access key id is not one this service knows. */
export class UnrecognizedClientError extends ApiError {
  constructor() {
    super(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
}

/** A well-formed signature that does not verify: wrong secret, tampered request, bad scope or stale date. */
export class InvalidSignatureError extends ApiError {
  constructor(message: string) {
    super(403, 'InvalidSignatureException', message);
  }
}

/** An `Authorization` header (or presigned query) that lacks a part SigV4 needs. */
export class IncompleteSignatureError extends ApiError {
  constructor(message: string) {
    super(403, 'IncompleteSignatureException', message);
  }
}

/** A known caller whose `allow` list does not grant the action. */
export class UnauthorizedError extends ApiError {
  constructor(message: string) {
    super(401, 'UnauthorizedException', message);
  }
}

export class ServiceUnavailableError extends ApiError {
  constructor(message: string, retryAfterSeconds = 5, cause?: unknown) {
    super(503, 'ServiceUnavailableException', message, retryAfterSeconds, { cause });
  }
}

/** The 503 for a dependency that did not answer; `what` says which (the one place for this text). */
export function serviceUnavailable(what: string, cause?: unknown): ServiceUnavailableError {
  return new ServiceUnavailableError(`Service is temporarily unavailable (${what}). Retry later.`, 2, cause);
}

/** The 503 for Redis not answering: a dependency failing, never a 4xx or a 500. */
export function redisUnavailable(cause?: unknown): ServiceUnavailableError {
  return serviceUnavailable('Redis is unavailable', cause);
}

export class InternalServerError extends ApiError {
  constructor(cause?: unknown) {
    super(500, 'InternalServerErrorException', 'Internal server error', undefined, { cause });
  }
}

/** True for errors that mean "Redis is not answering" rather than a bug. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const m = err.message;
  return (
    /Stream isn't writeable|enableOfflineQueue|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Command timed out|CLUSTERDOWN|TRYAGAIN|LOADING|MaxRetriesPerRequest|All sentinels are unreachable|Failed to refresh slots cache|None of startup nodes is available|Too many Cluster redirections|Cluster isn't ready/i.test(
      m,
    ) || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED'
  );
}
