import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { runSequence, step, switchesFromEnv, type StepSpec } from './model/conformance.js';
import { fuzz, startSession, type Session } from './model/session.js';

/**
 * The reference model (test/model/client-certificates-model.ts) against the real service: a bounded
 * number of random sequences (`npm run fuzz` runs more), then every divergence the fuzzer has found,
 * kept as the shrunk sequence that showed it. docs/conformance.md says how to read and replay them.
 */
const RUNS = Number(process.env.CONFORMANCE_RUNS ?? 30);

const us = { cred: 0, region: 'us-east-1' };
const replay = (s: Session, specs: StepSpec[]) => runSequence(s.real, specs.map(step));

describe('conformance: the service answers as the reference model says (fast-check, real API + worker + Redis)', () => {
  let s: Session;
  before(async () => {
    s = await startSession();
  });
  after(async () => {
    await s?.close();
  });

  it(`${RUNS} random command sequences, compared after every step`, async (t) => {
    const seed = process.env.CONFORMANCE_SEED ? Number(process.env.CONFORMANCE_SEED) : Date.now() | 0;
    t.diagnostic(`seed ${seed} (replay: npm run fuzz -- --runs ${RUNS} --seed ${seed} --max-commands 30)`);
    const details = await fuzz(s, { runs: RUNS, seed, maxCommands: 30, switches: switchesFromEnv() });
    t.diagnostic(`${s.stats.operations} operations in ${s.stats.runs} sequences`);
    assert.ok(!details.failed, fc.defaultReportMessage(details) ?? 'failed');
  });

  describe('regressions: shrunk sequences of divergences the fuzzer found', () => {
    it('a tag value of 256 letters outside the BMP is valid (lengths count characters, not UTF-16 units)', () =>
      replay(s, [
        {
          caller: us,
          step: { op: 'generate', body: JSON.stringify({ tags: { a: '\u{1D49C}'.repeat(256) } }) },
          sdk: false,
        },
        { caller: us, step: { op: 'getTags', arn: { form: 'good', id: { own: 0 } } }, sdk: false },
        {
          caller: us,
          step: {
            op: 'tag',
            arn: { form: 'good', id: { lit: 'zzzzzz' } },
            body: JSON.stringify({ tags: { a: '\u{1D49C}'.repeat(256) } }),
          },
          sdk: false,
        },
      ]));

    it('an op outside the patch enum after a refused op is the validation error, as AWS validates input first', () =>
      replay(s, [
        {
          caller: us,
          step: {
            op: 'update',
            id: { own: 0 },
            body: '{"patchOperations":[{"op":"add","path":"/description"},{"op":"REPLACE","path":"/description"}]}',
          },
          sdk: false,
        },
      ]));

    it('an ARN with an account field is a 400, not the caller’s own certificate', () =>
      replay(s, [
        { caller: us, step: { op: 'generate', body: '{"tags":{"a":"b"}}' }, sdk: true },
        {
          caller: us,
          step: {
            op: 'tag',
            arn: { form: 'lit', arn: 'arn:aws:apigateway:us-east-1:123456789012:/clientcertificates/abc123' },
            body: '{}',
          },
          sdk: false,
        },
        {
          caller: us,
          step: {
            op: 'untag',
            arn: { form: 'lit', arn: 'arn:aws-cn:apigateway:us-east-1::/clientcertificates/abc123' },
            tagKeys: ['a'],
          },
          sdk: true,
        },
      ]));

    it('a SigV4 scope for a region that does not exist is a 403 (issue 13: zz-fake-9 was a new tenant)', () =>
      replay(s, [
        {
          caller: { cred: 0, region: 'zz-fake-9' },
          step: { op: 'update', id: { own: 0 }, body: '{"patchOperations":[]}' },
          sdk: false,
        },
        { caller: { cred: 2, region: 'us-east-9' }, step: { op: 'generate', body: '{}' }, sdk: true },
        { caller: { hostile: 'wrong-secret', region: 'mars-north-1' }, step: { op: 'list' }, sdk: false },
      ]));

    it('tag keys named like Object.prototype members round-trip (issue 13: __proto__ was lost on Get and GetTags)', () =>
      replay(s, [
        {
          caller: us,
          step: { op: 'generate', body: '{"tags":{"__proto__":"e","constructor":"b","toString":"c"}}' },
          sdk: false,
        },
        { caller: us, step: { op: 'get', id: { own: 0 } }, sdk: false },
        { caller: us, step: { op: 'getTags', arn: { form: 'good', id: { own: 0 } } }, sdk: false },
        {
          caller: us,
          step: {
            op: 'tag',
            arn: { form: 'good', id: { own: 0 } },
            body: '{"tags":{"hasOwnProperty":"h","__proto__":"f"}}',
          },
          sdk: false,
        },
        { caller: us, step: { op: 'list' }, sdk: false },
        {
          caller: us,
          step: { op: 'untag', arn: { form: 'good', id: { own: 0 } }, tagKeys: ['__proto__'] },
          sdk: false,
        },
        { caller: us, step: { op: 'getTags', arn: { form: 'good', id: { own: 0 } } }, sdk: true },
      ]));

    it('a record whose only tag is __proto__, listed through the SDK (the runner: the SDK keeps that key in lists only)', () =>
      replay(s, [
        { caller: us, step: { op: 'generate', body: '{"tags":{"__proto__":""}}' }, sdk: false },
        { caller: us, step: { op: 'list' }, sdk: true },
        { caller: us, step: { op: 'get', id: { own: 0 } }, sdk: true },
        { caller: us, step: { op: 'list' }, sdk: false },
      ]));

    it('ARNs in cn-north-1 and us-gov-west-1 carry their partition (aws-cn, aws-us-gov); arn:aws there is a 400', () =>
      replay(s, [
        {
          caller: { cred: 0, region: 'cn-north-1' },
          step: { op: 'generate', body: '{"tags":{"a":"b"}}' },
          sdk: true,
        },
        {
          caller: { cred: 0, region: 'cn-north-1' },
          step: { op: 'getTags', arn: { form: 'good', id: { own: 0 } } },
          sdk: true,
        },
        {
          caller: { cred: 0, region: 'cn-north-1' },
          step: {
            op: 'tag',
            arn: { form: 'lit', arn: 'arn:aws:apigateway:cn-north-1::/clientcertificates/abc123' },
            body: '{"tags":{"c":"d"}}',
          },
          sdk: false,
        },
        {
          caller: { cred: 0, region: 'cn-north-1' },
          step: { op: 'untag', arn: { form: 'region', id: { own: 0 }, region: 'us-east-1' }, tagKeys: ['a'] },
          sdk: true,
        },
        {
          caller: us,
          step: { op: 'getTags', arn: { form: 'region', id: { lit: 'abc123' }, region: 'us-gov-west-1' } },
          sdk: false,
        },
        { caller: { cred: 0, region: 'us-gov-west-1' }, step: { op: 'generate', body: '{}' }, sdk: false },
        {
          caller: { cred: 0, region: 'us-gov-west-1' },
          step: { op: 'tag', arn: { form: 'good', id: { own: 0 } }, body: '{"tags":{"e":"f"}}' },
          sdk: true,
        },
        { caller: { cred: 2, region: 'us-gov-west-1' }, step: { op: 'generate', body: '{}' }, sdk: false },
      ]));

    it('a body over 64 KiB is a 413 before the caller’s permissions are looked at (model: the body is read first)', () =>
      replay(s, [
        {
          caller: { cred: 3, region: 'us-east-1' },
          step: { op: 'generate', body: `{"description":"${'a'.repeat(70_000)}"}` },
          sdk: false,
        },
      ]));
  });
});
