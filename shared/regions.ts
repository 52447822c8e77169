import { partition } from '@aws-sdk/core/client';

/**
 * Whether `name` is a region that exists, by the partition data the AWS SDK ships and keeps current
 * (`@aws-sdk/core`'s copy of partitions.json, the same data `@aws-sdk/util-endpoints` re-exports):
 * `partition()` adds a region's `description` only when the name is listed in a partition's `regions`;
 * for any other name it falls back to a partition's outputs alone. The `*-global` entries
 * (`aws-global`, `aws-cn-global`, ...) are endpoint aliases, not regions, and are refused.
 */
export function isAwsRegion(name: string): boolean {
  if (name === '' || name.endsWith('-global')) return false;
  return typeof (partition(name) as { description?: unknown }).description === 'string';
}

/**
 * Parses ALLOWED_REGIONS (`us-east-1,eu-west-1`).
 * @returns the regions, or what is wrong (without the variable's name, which loadConfig puts in front).
 */
export function parseAllowedRegions(value: string): Set<string> | string {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) return 'must name at least one region when set';
  const unknown = names.filter((n) => !isAwsRegion(n));
  if (unknown.length > 0) {
    return `names regions that do not exist: ${unknown.map((n) => JSON.stringify(n)).join(', ')}`;
  }
  return new Set(names);
}

/**
 * The partition a region lies in (`aws`, `aws-cn`, `aws-us-gov`, ...), by the same SDK partition data:
 * ARNs start `arn:{partition}:`, so a certificate in cn-north-1 is `arn:aws-cn:apigateway:cn-north-1::...`.
 * A name no partition lists gets the partition whose region pattern it matches, else `aws`.
 */
export function partitionOf(region: string): string {
  return partition(region).name;
}
