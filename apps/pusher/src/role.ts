import { listenOwnPort } from '@danmaku/http';
import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { startPusher } from './pusher.js';
import { PUSHER_SETTINGS, type PusherSettings } from './settings.js';

export const pusherRole: Role<PusherSettings, Shared> = defineRole('pusher', PUSHER_SETTINGS, async ({ settings, logger, shared }) => {
  const store = await shared.store();
  const pusher = await startPusher({
    redis: store.write,
    store,
    logger,
    cluster: settings.cluster,
    bigRoom: settings.pushBigRoom,
    smallRoom: settings.pushSmallRoom,
    readDelayMs: settings.pushNotifyDelayMs,
  });
  const own = shared.embedded
    ? null
    : await listenOwnPort({ name: 'pusher', logger, host: settings.host, port: settings.pusherPort, checks: { redis: () => store.ping() } });
  // Tests and scripts wait for this line.
  if (own) process.stdout.write(`pusher listening on ${own.url}\n`);
  // Tests and the supervisor read which pusher this is (rooms are shared by id).
  if (own) process.stdout.write(`pusher id ${pusher.id}\n`);
  return {
    ready: Promise.resolve(),
    async stop() {
      await pusher.stop();
      await own?.close();
    },
  };
});
