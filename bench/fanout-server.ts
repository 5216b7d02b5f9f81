/**
 * "Ours" minus the connector, for the fan-out bench: front + processor + pusher + router (the
 * standalone wiring without its embedded connector). The connector runs as a process of its own
 * (apps/connector/src/main.ts) so its CPU is measured by itself.
 */
import { loadConfig } from '@danmaku/config';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { startStandalone } from '@danmaku/standalone';

const config = loadConfig();
const logger = createLogger('bench-server', config.logLevel);
const system = await startStandalone(config, logger, { connector: false });
process.stdout.write(`server listening on ${system.url}\n`);
stopOnSignals(logger, () => system.stop());
