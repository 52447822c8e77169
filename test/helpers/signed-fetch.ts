// Moved to devtools/ (with the bench's signing client); this path stays for the tests that import it.
export * from '../../devtools/signed-fetch.js';
