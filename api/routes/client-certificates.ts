// api/routes/: the HTTP routes, one module per resource family (client certificates, tags) plus health, metrics and the queue dashboard.
import { Hono } from 'hono';
import { toHalList, toJson } from '../../shared/client-certificate.js';
import { BadRequestError } from '../../shared/errors.js';
import { CLIENT_CERTIFICATE_ID } from '../../shared/ids.js';
import {
  parseJsonBody,
  validateClientCertificatePatch,
  validateDescription,
  validateTags,
} from '../../shared/validation.js';
import type { AppDeps } from '../deps.js';
import type { AppEnv } from '../context.js';
import {
  HAL_MEDIA_TYPE,
  certificateId,
  certificateNotFound,
  renderRecord,
  wantsHal,
} from '../representation.js';

export const LIST_LIMIT_DEFAULT = 25;
export const LIST_LIMIT_MAX = 500;

/** `limit` of GetClientCertificates: a whole number 1..500, default 25. */
export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return LIST_LIMIT_DEFAULT;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= LIST_LIMIT_MAX)) {
    throw new BadRequestError(
      `Invalid limit ${JSON.stringify(raw)}: limit must be a whole number from 1 to ${LIST_LIMIT_MAX}`,
    );
  }
  return n;
}

/**
 * The paging token is the last id of the previous page, base64url-encoded so callers treat it as
 * opaque. Walking by id (not by offset) is what keeps pages from repeating or skipping a certificate
 * while others are created or deleted.
 */
export function encodePosition(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** @returns the id the token stands for; a token this service did not make is a 400. */
export function decodePosition(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const id = Buffer.from(token, 'base64url').toString('utf8');
  if (!CLIENT_CERTIFICATE_ID.test(id) || encodePosition(id) !== token) {
    throw new BadRequestError(
      'Invalid position: pass the position value of the previous GetClientCertificates answer unchanged',
    );
  }
  return id;
}

/** The ClientCertificate operations. Handlers validate, call the domain, and map the result. */
export function clientCertificateRoutes(deps: Pick<AppDeps, 'issuer' | 'store' | 'ca'>) {
  const app = new Hono<AppEnv>();

  // GenerateClientCertificate
  app.post('/clientcertificates', async (c) => {
    const body = parseJsonBody(new Uint8Array(await c.req.arrayBuffer()));
    const description = validateDescription(body.description);
    const tags = validateTags(body.tags);
    const cert = await deps.issuer.generate(c.get('tenant'), { description, tags }, c.get('log'));
    return renderRecord(c, cert, 201);
  });

  // GetClientCertificates
  app.get('/clientcertificates', async (c) => {
    const askedLimit = c.req.query('limit');
    const limit = parseLimit(askedLimit);
    const after = decodePosition(c.req.query('position'));
    const page = await deps.store.list(c.get('tenant'), limit, after);
    const position = page.last === undefined ? undefined : encodePosition(page.last);
    if (wantsHal(c.req.header('accept'))) {
      return c.body(
        JSON.stringify(toHalList(page.items, position, askedLimit === undefined ? undefined : limit)),
        200,
        {
          'content-type': HAL_MEDIA_TYPE,
        },
      );
    }
    return c.json(
      position === undefined ? { item: page.items.map(toJson) } : { item: page.items.map(toJson), position },
    );
  });

  // GetClientCertificate
  app.get('/clientcertificates/:id', async (c) => {
    const cert = await deps.store.get(c.get('tenant'), certificateId(c.req.param('id')));
    if (!cert) throw certificateNotFound();
    return renderRecord(c, cert);
  });

  // UpdateClientCertificate
  app.patch('/clientcertificates/:id', async (c) => {
    const id = certificateId(c.req.param('id'));
    const patch = validateClientCertificatePatch(
      parseJsonBody(new Uint8Array(await c.req.arrayBuffer())).patchOperations,
    );
    const t = c.get('tenant');
    if (patch.change && !(await deps.store.setDescription(t, id, patch.description))) {
      throw certificateNotFound();
    }
    const cert = await deps.store.get(t, id);
    if (!cert) throw certificateNotFound();
    return renderRecord(c, cert);
  });

  // DeleteClientCertificate
  app.delete('/clientcertificates/:id', async (c) => {
    const t = c.get('tenant');
    const id = certificateId(c.req.param('id'));
    // CA mode: the delete also revokes (CRL and OCSP), in the same atomic step.
    if (!(await (deps.ca ? deps.ca.delete(deps.store, t, id) : deps.store.delete(t, id)))) {
      throw certificateNotFound();
    }
    // Only once the record is gone (a job still waiting for a reserved id must keep its data).
    await deps.issuer.forget(t, id);
    return c.body(null, 202);
  });

  return app;
}
