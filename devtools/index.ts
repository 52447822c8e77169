// devtools/: development tools that tests, bench and soak share; the service itself never imports them.
export * from './aws-client.js';
export * from './entry.js';
export * from './processes.js';
export * from './redis-server.js';
export * from './signed-fetch.js';
export * from './nginx.js';
export * from './service.js';
export * from './tls.js';
