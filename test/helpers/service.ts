// Moved to devtools/ (the bench uses it too); this path stays for the tests that import it.
export * from '../../devtools/service.js';
