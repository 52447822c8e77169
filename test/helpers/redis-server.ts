// Moved to devtools/ (bench and soak use it too); this path stays for the tests that import it.
export * from '../../devtools/redis-server.js';
