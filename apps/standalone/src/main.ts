import { loadConfig, refuseUnsafeStart } from '@danmaku/config';
import { createLogger, stopOnSignals, watchEventLoop } from '@danmaku/observability';
import { startStandalone } from './standalone.js';

const config = loadConfig();
const logger = createLogger('standalone', config.logLevel);
refuseUnsafeStart(config, (text) => logger.warn(text));
const system = await startStandalone(config, logger);
const room = 'demo';
process.stdout.write(`
Danmaku is running (standalone, ${config.kafkaBrokers.length > 0 ? `Kafka at ${config.kafkaBrokers.join(',')}` : 'in-memory bus'}) on ${system.url}

  pages:  ${system.url}/rooms/${room} (viewer; "Get a dev token" while the secret is the default)
          ${system.url}/replay?room=${room}   ${system.url}/admin

  token:  TOKEN=$(npm run -s token -- --sub u1 --name Ann --role viewer)
  send:   curl -s -X POST ${system.url}/v1/rooms/${room}/messages -H "Authorization: Bearer $TOKEN" \\
            -H 'content-type: application/json' -d '{"type":"comment","content":"hello"}'
  poll:   curl -s '${system.url}/v1/rooms/${room}/messages'
  health: curl -s ${system.url}/readyz
  route:  curl -s '${system.url}/v1/route?uid=u1'   (long connections: socket.io on this same port)

Ctrl-C stops it.
`);
stopOnSignals(logger, () => system.stop());
watchEventLoop(config.loopStallMs);
