import { tagMap } from './client-certificate.js';
import { BadRequestError } from './errors.js';

/** What an AWS region name looks like (us-east-1, us-gov-west-1, cn-north-1, ...). */
export const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

export const DESCRIPTION_MAX = 1024;
export const TAG_KEY_MAX = 128;
export const TAG_VALUE_MAX = 256;
export const TAGS_MAX = 50;

/** AWS's tag character set, its documented pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`. */
const TAG_CHARS = /^[\p{L}\p{N}\p{Z}_.:/=+\-@]*$/u;
/**
 * Control characters (Unicode Cc) other than tab, line feed and carriage return: C0, DEL and C1
 * (U+009B is an 8-bit CSI, as good as ESC [ to a terminal).
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/** Length in characters (code points), as AWS counts tag lengths: an emoji or 𝒜 is one, not two. */
export const charLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** A caller's string quoted in a message, cut after 40 characters (never inside a surrogate pair). */
const quote = (s: string) => {
  const cs = [...s];
  return JSON.stringify(cs.length > 40 ? `${cs.slice(0, 40).join('')}...` : s);
};

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** @returns the description, or undefined when absent. */
export function validateDescription(v: unknown, field = 'description'): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new BadRequestError(`${field} must be a string`);
  const length = charLength(v);
  if (length > DESCRIPTION_MAX) {
    throw new BadRequestError(`${field} must be at most ${DESCRIPTION_MAX} characters, got ${length}`);
  }
  if (CONTROL.test(v)) throw new BadRequestError(`${field} must not contain control characters`);
  checkWellFormed(v, field);
  return v;
}

export function validateTagKey(k: string, field = 'tags'): void {
  if (k.length === 0) throw new BadRequestError(`Invalid tag key in ${field}: a tag key must not be empty`);
  if (charLength(k) > TAG_KEY_MAX) {
    throw new BadRequestError(
      `Invalid tag key ${quote(k)} in ${field}: a tag key must be at most ${TAG_KEY_MAX} characters, got ${charLength(k)}`,
    );
  }
  if (k.toLowerCase().startsWith('aws:')) {
    throw new BadRequestError(
      `Invalid tag key ${quote(k)} in ${field}: a tag key must not start with 'aws:'`,
    );
  }
  checkWellFormed(k, `A tag key in ${field}`);
  if (!TAG_CHARS.test(k)) {
    throw new BadRequestError(
      `Invalid tag key ${quote(k)} in ${field}: allowed characters are letters, digits, spaces and + - = . _ : / @`,
    );
  }
}

/**
 * Validates a tag map as GenerateClientCertificate and TagResource take it.
 * @returns the map (with no prototype: see {@link tagMap}), empty when absent.
 */
export function validateTags(v: unknown, field = 'tags'): Record<string, string> {
  if (v === undefined) return tagMap();
  if (!isPlainObject(v))
    throw new BadRequestError(`${field} must be an object mapping tag keys to string values`);
  const keys = Object.keys(v);
  if (keys.length > TAGS_MAX) {
    throw new BadRequestError(`${field} must have at most ${TAGS_MAX} tags, got ${keys.length}`);
  }
  const entries: [string, string][] = [];
  for (const k of keys) {
    validateTagKey(k, field);
    const value = v[k];
    if (typeof value !== 'string') {
      throw new BadRequestError(`Invalid value for tag ${quote(k)} in ${field}: tag values must be strings`);
    }
    if (charLength(value) > TAG_VALUE_MAX) {
      throw new BadRequestError(
        `Invalid value for tag ${quote(k)} in ${field}: a tag value must be at most ${TAG_VALUE_MAX} characters, got ${charLength(value)}`,
      );
    }
    checkWellFormed(value, `The value of tag ${quote(k)} in ${field}`);
    if (!TAG_CHARS.test(value)) {
      throw new BadRequestError(
        `Invalid value for tag ${quote(k)} in ${field}: allowed characters are letters, digits, spaces and + - = . _ : / @`,
      );
    }
    entries.push([k, value]);
  }
  return tagMap(entries);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
const LENIENT_UTF8 = new TextDecoder('utf-8');
/** A UTF-16 surrogate that is not half of a pair: with the `u` flag a pair is one code point outside this range. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** Throws when `s` holds a lone surrogate (a `\ud800` escape in JSON): it is not text and has no UTF-8 form. */
function checkWellFormed(s: string, field: string): void {
  if (LONE_SURROGATE.test(s)) {
    throw new BadRequestError(
      `${field} must be valid Unicode text: it holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape)`,
    );
  }
}

/**
 * Parses a request body that must be a JSON object in strict UTF-8: bytes that are not UTF-8 are a
 * 400 naming the field that holds them, never replaced by U+FFFD, so what is stored is what was signed.
 */
export function parseJsonBody(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    throw new BadRequestError(
      `Could not parse request body into json: the body is not valid UTF-8${invalidField(bytes)}. Send text as UTF-8.`,
    );
  }
  return parseJsonObject(text);
}

/** `(in <field>)` for the first field whose text held bytes that are not UTF-8, when one can be named. */
function invalidField(bytes: Uint8Array): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(LENIENT_UTF8.decode(bytes));
  } catch {
    return '';
  }
  const walk = (v: unknown, path: string): string | undefined => {
    if (typeof v === 'string') return v.includes('\ufffd') ? path : undefined;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const hit = walk(v[i], `${path}[${i}]`);
        if (hit) return hit;
      }
      return undefined;
    }
    if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        const name = path ? `${path}.${k}` : k;
        if (k.includes('\ufffd')) return `${name} (a key)`;
        const hit = walk(x, name);
        if (hit) return hit;
      }
    }
    return undefined;
  };
  const field = walk(parsed, '');
  return field ? ` (in ${field.replace(/\ufffd/g, '?')})` : '';
}

/** Parses a request body that must be a JSON object (an empty body counts as `{}`). */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`Could not parse request body into json: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new BadRequestError('Request body must be a JSON object');
  return parsed;
}

/** The JSON-Patch operations API Gateway's enum allows (in AWS's order, as its error messages list them). */
export const PATCH_OPS = ['add', 'remove', 'move', 'test', 'replace', 'copy'] as const;
/** The only path UpdateClientCertificate may change. */
const CLIENT_CERTIFICATE_PATCH_PATHS = ['/description'];

/**
 * Validates UpdateClientCertificate's `patchOperations` completely before anything is written, so a
 * rejected patch changes nothing. Only `replace` of `/description` is allowed; the wording of each
 * rejection is API Gateway's.
 * @returns `{ change: false }` when there is nothing to do, otherwise the description to store
 *   (undefined = remove it; the last operation wins).
 */
export function validateClientCertificatePatch(
  v: unknown,
): { change: false } | { change: true; description: string | undefined } {
  if (v === undefined || v === null) return { change: false };
  if (!Array.isArray(v)) throw new BadRequestError('patchOperations must be a list of patch operations');
  // AWS checks the whole input against its model (the op enum) before the operation looks at any patch,
  // so an op outside the enum anywhere in the list wins over a supported-but-refused op before it.
  const enumErrors: string[] = [];
  v.forEach((operation: unknown, i) => {
    const op = isPlainObject(operation) ? operation.op : undefined;
    if (
      isPlainObject(operation) &&
      !(typeof op === 'string' && (PATCH_OPS as readonly string[]).includes(op))
    ) {
      enumErrors.push(
        `Value ${typeof op === 'string' ? `'${op}'` : 'null'} at 'updateClientCertificateInput.patchOperations.${i + 1}.member.op' failed to satisfy constraint: Member must satisfy enum value set: [${PATCH_OPS.join(', ')}]`,
      );
    }
  });
  if (enumErrors.length > 0) {
    // docs/aws-behaviour.md, "Update (patch)": an op outside the enum is a BadRequestException in AWS's model-check words.
    const n = enumErrors.length;
    throw new BadRequestError(`${n} validation error${n > 1 ? 's' : ''} detected: ${enumErrors.join('; ')}`);
  }
  let result: { change: false } | { change: true; description: string | undefined } = { change: false };
  v.forEach((operation: unknown, i) => {
    if (!isPlainObject(operation)) {
      throw new BadRequestError(`patchOperations[${i}] must be an object with op, path and value`);
    }
    const { op, path, value } = operation;
    const p = path === undefined || path === null ? 'null' : String(path);
    if (op !== 'replace') {
      throw new BadRequestError(
        `Invalid patch path  '${p}' specified for op '${op}'. Please choose supported operations`,
      );
    }
    if (!CLIENT_CERTIFICATE_PATCH_PATHS.includes(p)) {
      throw new BadRequestError(
        `Invalid patch path  '${p}' specified for op 'replace'. Must be one of: [${CLIENT_CERTIFICATE_PATCH_PATHS.join(', ')}]`,
      );
    }
    const description =
      value === null ? undefined : validateDescription(value, `patchOperations[${i}].value`);
    result = { change: true, description };
  });
  return result;
}
