import cluster from 'node:cluster';
import { ConfigError, loadConfig, refuseUnsafeStart, type Config } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { connectorRole, connectorRoleIn } from './role.js';
import { joinPrimary, runPrimary, workerCount } from './workers.js';

/** DANMAKU_CONNECTOR_WORKERS; with a setting runMain refuses, 1 (it then says what is wrong and exits). */
function configuredWorkers(config: Config): number {
  try {
    return workerCount(config.connectorWorkers);
  } catch (err) {
    if (err instanceof ConfigError) return 1;
    throw err;
  }
}

if (cluster.isWorker) {
  // Connections the primary hands over while the role starts wait for it (held.ts, preloaded).
  const seat = joinPrimary();
  await runMain(connectorRoleIn(seat), openProcessShared);
} else {
  const config = loadConfig();
  const workers = configuredWorkers(config);
  if (workers === 1) {
    await runMain(connectorRole, openProcessShared);
  } else {
    // Each worker warns of the development secret itself; the primary only refuses an unsafe start.
    refuseUnsafeStart(config, () => undefined);
    const logger = createLogger('connector', config.logLevel);
    try {
      await runPrimary({ config, logger, workers });
    } catch (err) {
      logger.error({ err }, 'the connector did not start');
      process.exit(1);
    }
  }
}
