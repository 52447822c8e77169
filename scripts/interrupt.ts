/**
 * Ctrl-C (or SIGTERM) for the operator CLIs: the first signal prints `message` on stderr and aborts the
 * returned signal, so the run finishes what it has in hand and says how to resume; a second one exits
 * at once with 130.
 */
export function abortOnInterrupt(message: string): AbortSignal {
  const abort = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    process.stderr.write(`\n${message}\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return abort.signal;
}
