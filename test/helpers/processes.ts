// Moved to devtools/ (soak uses it too); this path stays for the tests that import it.
export * from '../../devtools/processes.js';
