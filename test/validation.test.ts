import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestError } from '../shared/errors.js';
import { parseJsonObject, validateDescription, validateTags } from '../shared/validation.js';

function rejects(fn: () => unknown, message: RegExp | string) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BadRequestError, `expected BadRequestError, got ${String(err)}`);
    assert.equal(err.status, 400);
    assert.equal(err.type, 'BadRequestException');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('request body', () => {
  it('treats an empty body as an empty object', () => assert.deepEqual(parseJsonObject(''), {}));
  it('rejects malformed JSON, naming the problem', () =>
    rejects(() => parseJsonObject('{"description": '), /^Could not parse request body into json: /));
  for (const body of ['[]', '"x"', '42', 'null', 'true']) {
    it(`rejects a body that is not a JSON object: ${body}`, () =>
      rejects(() => parseJsonObject(body), 'Request body must be a JSON object'));
  }
  it('keeps unknown fields out of the way', () => assert.deepEqual(parseJsonObject('{"x":1}'), { x: 1 }));
});

describe('description', () => {
  it('accepts absence and strings up to 1024 characters', () => {
    assert.equal(validateDescription(undefined), undefined);
    assert.equal(validateDescription('x'.repeat(1024)), 'x'.repeat(1024));
    assert.equal(validateDescription('línea 1\nline\t2'), 'línea 1\nline\t2');
  });
  it('rejects a description over 1024 characters', () =>
    rejects(
      () => validateDescription('x'.repeat(1025)),
      'description must be at most 1024 characters, got 1025',
    ));
  for (const v of [42, null, true, ['a'], { a: 1 }]) {
    it(`rejects a description that is not a string: ${JSON.stringify(v)}`, () =>
      rejects(() => validateDescription(v), 'description must be a string'));
  }
  it('rejects control characters', () =>
    rejects(() => validateDescription('a\u0000b'), 'description must not contain control characters'));
});

describe('tags', () => {
  it('accepts the full AWS character set', () => {
    const tags = { 'team name+-=._:/@': 'pay ments+-=._:/@', Ünïcödé: 'ok', k: '' };
    assert.deepEqual(validateTags(tags), tags);
  });
  it('accepts 50 tags and rejects 51', () => {
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    assert.equal(Object.keys(validateTags(fifty)).length, 50);
    rejects(() => validateTags({ ...fifty, k50: 'v' }), 'tags must have at most 50 tags, got 51');
  });
  for (const v of [[], 'a=b', 42, null]) {
    it(`rejects tags that are not an object: ${JSON.stringify(v)}`, () =>
      rejects(() => validateTags(v), 'tags must be an object mapping tag keys to string values'));
  }
  it('rejects a non-string value', () =>
    rejects(() => validateTags({ a: 1 }), 'Invalid value for tag "a" in tags: tag values must be strings'));
  it('rejects an empty key', () =>
    rejects(() => validateTags({ '': 'v' }), 'Invalid tag key in tags: a tag key must not be empty'));
  it('accepts a 128-character key and rejects a 129-character one', () => {
    assert.deepEqual({ ...validateTags({ ['k'.repeat(128)]: 'v' }) }, { ['k'.repeat(128)]: 'v' });
    rejects(
      () => validateTags({ ['k'.repeat(129)]: 'v' }),
      /a tag key must be at most 128 characters, got 129$/,
    );
  });
  for (const key of ['aws:x', 'AWS:x', 'Aws:cost']) {
    it(`rejects a tag key that starts with aws: in any case (${key})`, () =>
      rejects(
        () => validateTags({ [key]: 'v' }),
        `Invalid tag key "${key}" in tags: a tag key must not start with 'aws:'`,
      ));
  }
  for (const key of ['a*b', 'semi;colon', 'new\nline', 'q"uote', 'tab\t']) {
    it(`rejects a key outside the allowed characters: ${JSON.stringify(key)}`, () =>
      rejects(
        () => validateTags({ [key]: 'v' }),
        /allowed characters are letters, digits, spaces and \+ - = \. _ : \/ @$/,
      ));
  }
  it('accepts a 256-character value and rejects a 257-character one', () => {
    assert.deepEqual({ ...validateTags({ k: 'v'.repeat(256) }) }, { k: 'v'.repeat(256) });
    rejects(
      () => validateTags({ k: 'v'.repeat(257) }),
      /a tag value must be at most 256 characters, got 257$/,
    );
  });
  it('rejects a value outside the allowed characters', () =>
    rejects(() => validateTags({ k: 'a#b' }), /^Invalid value for tag "k" in tags: allowed characters/));
  it('keeps a "__proto__" key as a plain tag', () => {
    const tags = validateTags(JSON.parse('{"__proto__": "x"}'));
    assert.equal(Object.getPrototypeOf(tags), Object.prototype);
    assert.deepEqual(Object.keys(tags), ['__proto__']);
  });
});
