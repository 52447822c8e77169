import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { installShutdown } from '../shared/shutdown.js';
import { startApi } from './server.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const log = createLogger(config.logLevel, 'api');
const api = await startApi(config, log);
log.info({ url: api.url }, 'API listening');
installShutdown(log, config.generateTimeoutMs + 10_000, () => api.close(config.generateTimeoutMs + 5_000));
