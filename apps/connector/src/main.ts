import cluster from 'node:cluster';
import { ConfigError, loadConfig, refuseUnsafeStart, type Config } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { connectorRole, connectorRoleIn } from './role.js';
import { joinPrimary, runPrimary, workerCount } from './workers.js';

/**
 * The settings and worker count when DANMAKU_CONNECTOR_WORKERS asks for several processes; null
 * for one, and for settings runMain refuses (it then says what is wrong and exits).
 */
function severalWorkers(): { config: Config; workers: number } | null {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) return null;
    throw err;
  }
  const workers = workerCount(config.connectorWorkers);
  return workers > 1 ? { config, workers } : null;
}

if (cluster.isWorker) {
  // Connections the primary hands over while the role starts wait for it (held.ts, preloaded).
  const seat = joinPrimary();
  await runMain(connectorRoleIn(seat), openProcessShared);
} else {
  const several = severalWorkers();
  if (!several) {
    await runMain(connectorRole, openProcessShared);
  } else {
    const { config, workers } = several;
    refuseUnsafeStart(config);
    const logger = createLogger('connector', config.logLevel);
    try {
      await runPrimary({ config, logger, workers });
    } catch (err) {
      logger.error({ err }, 'the connector did not start');
      process.exit(1);
    }
  }
}
