/**
 * Process entry helper: parse config (a bad variable exits with its name), build a logger, run
 * `main`, and on SIGINT/SIGTERM stop components in reverse order of start.
 */
import { ConfigError, loadConfig, type Config } from './config';
import { ownShutdownSignals, SetupError } from './dev-services';
import { createLogger, type Logger } from './logger';
import { Lifecycle } from './system';

export async function runProcess(
  name: string,
  main: (ctx: { config: Config; logger: Logger; life: Lifecycle }) => Promise<void>,
) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`warden ${name}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel }).child({ process: name });
  const life = new Lifecycle(logger);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await life.stopAll();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  ownShutdownSignals(); // this shutdown stops embedded Postgres too, in its order
  try {
    await main({ config, logger, life });
  } catch (err) {
    if (err instanceof SetupError) process.stderr.write(`warden ${name}: ${err.message}\n`);
    else logger.error({ err }, 'start-up failed');
    await life.stopAll();
    process.exit(1);
  }
}
