import type { Server as HttpServer } from 'node:http';
import { listenOwnPort, type OwnPort } from '@danmaku/http';
import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { Switchboard } from '@danmaku/switches';
import { startConnector } from './connector.js';
import { CONNECTOR_SETTINGS, type ConnectorSettings } from './settings.js';
import type { WorkerSeat } from './workers.js';

/**
 * The connection layer. Beside a front (standalone) socket.io shares the front's port; alone it
 * has a port of its own. Sends over the socket take the send pipeline HTTP sends take, checks and
 * all, so they need a bus; a connector without one only delivers, and `send` answers 503.
 */
export const connectorRole: Role<ConnectorSettings, Shared> = connectorRoleIn(null);

/**
 * The connector role; in a worker of a connector of several processes (DANMAKU_CONNECTOR_WORKERS,
 * see workers.ts) its server takes the connections its primary hands over, and /readyz and
 * /metrics answer for the whole connector.
 */
export function connectorRoleIn(seat: WorkerSeat | null): Role<ConnectorSettings, Shared> {
  return defineRole('connector', CONNECTOR_SETTINGS, async ({ settings, logger, shared }) => {
    const store = await shared.store();
    const sendPath = shared.hasBus ? await shared.send() : null;
    if (!sendPath) logger.warn('no KAFKA_BROKERS: socket sends are refused (clients send over HTTP)');
    const bus = shared.hasBus ? await shared.bus() : null;
    // The degrade switches (big-room sampling): the send path's snapshot, or one of our own.
    const ownSwitches = sendPath ? null : await new Switchboard({ redis: store.write, refreshMs: settings.switchesRefreshMs }).start();
    const switches = sendPath?.switches ?? (ownSwitches as Switchboard);
    let own: OwnPort | null = null;
    const checks = { redis: () => store.ping(), ...(bus ? { bus: () => bus.healthy() } : {}) };
    let server: HttpServer;
    let url: string;
    if (shared.front) {
      if (settings.connectorWorkers !== 1) logger.warn('DANMAKU_CONNECTOR_WORKERS applies to a connector run on its own (apps/connector); beside a front it runs in this one process');
      server = shared.front.app.server;
      url = shared.front.url;
    } else {
      own = await listenOwnPort({
        name: 'connector',
        logger,
        host: settings.host,
        port: settings.connectorPort,
        corsOrigins: settings.corsOrigins,
        checks: { ...checks, ...(seat ? { workers: () => seat.clusterReady() } : {}) },
        ...(seat ? { handedFrom: seat.url } : {}),
      });
      server = own.app.server;
      url = own.url;
    }
    const publicUrl = settings.connectorUrl ?? url;
    const connector = await startConnector({
      config: settings,
      logger,
      store,
      auth: shared.auth,
      ingest: sendPath?.pipeline ?? null,
      server,
      publicUrl,
      redis: store.write,
      sampleRatio: () => switches.get().bigRoomSampleRatio,
    });
    // Tests and scripts wait for this line.
    if (own) process.stdout.write(`connector ${connector.nodeId} listening on ${publicUrl}${seat ? ` (worker pid ${process.pid})` : ''}\n`);
    seat?.serve({ io: connector.io, nodeId: connector.nodeId, checks });
    return {
      ready: Promise.resolve(),
      drain: () => connector.drain(settings.drainMs),
      async stop() {
        await connector.stop();
        ownSwitches?.stop();
        await own?.close();
      },
    };
  });
}
