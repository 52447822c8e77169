// Preloaded (`--import`) into every test file's process by devtools/run-tests.ts.
//
// Node's test runner runs each file in a child that streams its results to the runner over stdout, a pipe, and
// --test-force-exit ends that child with process.exit(). On Linux pipe writes are asynchronous, so the exit could
// drop the file's last results: a run here reported 560 tests where the same tree reports 590, all of
// test/validation.test.ts missing, at exit 0 (nodejs/node#64833; the fix, nodejs/node#64875, is not released).
// A blocking stdout makes every result written before the exit; run-tests.ts also fails a file that reports nothing.
const stdout = process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => unknown } };
stdout._handle?.setBlocking?.(true);
