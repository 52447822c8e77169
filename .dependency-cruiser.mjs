/**
 * The layers, checked by `npm run check` (dependency-cruiser): no import cycles, and no import that
 * runs the wrong way. shared/ is the bottom; api/, worker/ and gateway/ are services on it that never
 * import each other (gateway/ imports neither); scripts/ are the operator CLIs on top. What ships (the
 * build's entry points, scripts/build.mjs) never imports devtools/, bench/ or test/.
 */
const SHIPPED =
  '^(api|worker|gateway|shared)/|^scripts/(start|bulk|rekey|interrupt)[./]|^bench/bare-hono[.]ts$';

export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: modules that need each other to load are one module in two files.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'shared-stays-below',
      severity: 'error',
      comment: 'shared/ is what every process imports; it imports none of them.',
      from: { path: '^shared/' },
      to: { path: '^(api|worker|gateway|scripts|devtools|bench|test)/' },
    },
    {
      name: 'api-not-worker',
      severity: 'error',
      comment: 'The API and the worker meet only through shared/ (jobs.ts, queue.ts, the store).',
      from: { path: '^api/' },
      to: { path: '^(worker|gateway|scripts)/' },
    },
    {
      name: 'worker-not-api',
      severity: 'error',
      comment: 'The API and the worker meet only through shared/ (jobs.ts, queue.ts, the store).',
      from: { path: '^worker/' },
      to: { path: '^(api|gateway|scripts)/' },
    },
    {
      name: 'gateway-on-shared',
      severity: 'error',
      comment: 'The gateway reads records through shared/ alone.',
      from: { path: '^gateway/' },
      to: { path: '^(api|worker|scripts)/' },
    },
    {
      name: 'shipped-not-dev',
      severity: 'error',
      comment: 'What the image ships never imports development tools, the bench or tests.',
      from: { path: SHIPPED },
      to: { path: '^(devtools|bench|test)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.data)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
