import cluster from 'node:cluster';
import { ConfigError, loadConfig, unsafeStartReason } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { connectorRole, connectorRoleIn } from './role.js';
import { joinPrimary, runPrimary, workerCount } from './workers.js';

/** DANMAKU_CONNECTOR_WORKERS; with a setting runMain refuses, 1 (it then says what is wrong and exits). */
function configuredWorkers(): number {
  try {
    return workerCount(loadConfig().connectorWorkers);
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
  const workers = configuredWorkers();
  if (workers === 1) {
    await runMain(connectorRole, openProcessShared);
  } else {
    const config = loadConfig();
    const unsafe = unsafeStartReason(config);
    if (unsafe) {
      process.stderr.write(`${unsafe}\n`);
      process.exit(1);
    }
    const logger = createLogger('connector', config.logLevel);
    try {
      await runPrimary({ config, logger, workers });
    } catch (err) {
      logger.error({ err }, 'the connector did not start');
      process.exit(1);
    }
  }
}
