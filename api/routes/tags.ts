import { Hono } from 'hono';
import { clientCertificateArn, parseClientCertificateArn } from '../../shared/client-certificate.js';
import { BadRequestError } from '../../shared/errors.js';
import type { Tenant } from '../../shared/keys.js';
import { TAGS_MAX, parseJsonBody, validateTagKey, validateTags } from '../../shared/validation.js';
import type { AppDeps } from '../deps.js';
import type { AppEnv } from '../context.js';
import { certificateId, certificateNotFound } from '../representation.js';

/** The id a `/tags/{resource_arn}` path names, or a 400 saying what is wrong with the ARN. */
function idFromArn(arn: string, t: Tenant): string {
  const parsed = parseClientCertificateArn(arn, t.region);
  if ('id' in parsed) return certificateId(parsed.id);
  const expected = clientCertificateArn(t.region, '{clientcertificate_id}');
  const why =
    parsed.problem === 'region'
      ? `its region ${parsed.arnRegion ? `'${parsed.arnRegion}'` : '(empty)'} is not the request's region '${t.region}'`
      : parsed.problem === 'service'
        ? 'it does not name an API Gateway resource'
        : parsed.problem === 'partition'
          ? `its partition '${parsed.arnPartition}' is not the request's partition '${parsed.partition}'`
          : parsed.problem === 'account'
            ? 'it names an account, and API Gateway ARNs have none'
            : parsed.problem === 'resource'
              ? 'it does not name a client certificate'
              : 'it is not an ARN';
  throw new BadRequestError(`Invalid ARN specified in the request: ${why}; expected ${expected}`);
}

/** TagResource, UntagResource and GetTags for client certificates, addressed by ARN. */
export function tagRoutes(deps: Pick<AppDeps, 'store'>) {
  const app = new Hono<AppEnv>();
  // The ARN arrives URL-encoded (its `/` as %2F); the {.+} pattern also takes a raw, unencoded one.
  const path = '/tags/:arn{.+}';

  // GetTags
  app.get(path, async (c) => {
    const t = c.get('tenant');
    const cert = await deps.store.get(t, idFromArn(c.req.param('arn'), t));
    if (!cert) throw certificateNotFound();
    return c.json({ tags: cert.tags });
  });

  // TagResource (merge)
  app.put(path, async (c) => {
    const t = c.get('tenant');
    const id = idFromArn(c.req.param('arn'), t);
    const body = parseJsonBody(new Uint8Array(await c.req.arrayBuffer()));
    if (body.tags === undefined) throw new BadRequestError('tags is required: a map of tag keys to values');
    const tags = validateTags(body.tags);
    const r = await deps.store.tag(t, id, tags, TAGS_MAX);
    if (r === 'notfound') throw certificateNotFound();
    if (r === 'limit') {
      throw new BadRequestError(
        `Too many tags: a client certificate can have at most ${TAGS_MAX} tags; remove some with UntagResource first`,
      );
    }
    return c.body(null, 204);
  });

  // UntagResource
  app.delete(path, async (c) => {
    const t = c.get('tenant');
    const id = idFromArn(c.req.param('arn'), t);
    const keys = c.req.queries('tagKeys') ?? [];
    if (keys.length === 0) {
      throw new BadRequestError('tagKeys is required: name at least one tag key to remove (?tagKeys=key)');
    }
    for (const k of keys) validateTagKey(k, 'tagKeys');
    if (!(await deps.store.untag(t, id, keys))) throw certificateNotFound();
    return c.body(null, 204);
  });

  return app;
}
