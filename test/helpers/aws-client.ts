// Moved to devtools/ (soak uses it too); this path stays for the tests that import it.
export * from '../../devtools/aws-client.js';
/** @deprecated The old name of {@link showOutcome}: it shadowed node:test's `describe`. */
export { showOutcome as describe } from '../../devtools/aws-client.js';
