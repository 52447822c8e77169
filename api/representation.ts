import type { ClientCertificate } from '../shared/client-certificate.js';
import { toHal, toJson } from '../shared/client-certificate.js';
import { NotFoundError } from '../shared/errors.js';
import { CLIENT_CERTIFICATE_ID } from '../shared/ids.js';
import type { AppContext } from './context.js';

export const HAL_MEDIA_TYPE = 'application/hal+json';

/**
 * True when the `Accept` header prefers `application/hal+json` over `application/json` (by q, then by
 * order). The SDKs send no such header, so they always get plain JSON.
 */
export function wantsHal(accept: string | undefined): boolean {
  if (!accept) return false;
  let hal: { q: number; at: number } | undefined;
  let json: { q: number; at: number } | undefined;
  accept.split(',').forEach((part, at) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const entry = { q: Number.isFinite(q) ? q : 0, at };
    if (type === HAL_MEDIA_TYPE) hal ??= entry;
    else if (type === 'application/json') json ??= entry;
  });
  if (!hal || hal.q <= 0) return false;
  return !json || hal.q > json.q || (hal.q === json.q && hal.at < json.at);
}

/** Answers one record as HAL or plain JSON, as the request's `Accept` asks. */
export function renderRecord(c: AppContext, cert: ClientCertificate, status: 200 | 201 = 200): Response {
  if (wantsHal(c.req.header('accept'))) {
    return c.body(JSON.stringify(toHal(cert)), status, { 'content-type': HAL_MEDIA_TYPE });
  }
  return c.json(toJson(cert), status);
}

/** What API Gateway answers for any id that names no certificate of the caller's account and region. */
export function certificateNotFound(): NotFoundError {
  return new NotFoundError('Invalid Client Certificate identifier specified');
}

/** The id of a path or ARN, or a 404 when it cannot be an id (e.g. `..%2F`), before Redis is asked. */
export function certificateId(raw: string | undefined): string {
  if (raw === undefined || !CLIENT_CERTIFICATE_ID.test(raw)) throw certificateNotFound();
  return raw;
}
