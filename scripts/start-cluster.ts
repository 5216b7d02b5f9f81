/**
 * npm run start:cluster: the whole split topology on one machine, every role twice (the router
 * once), on the Redis Cluster and the Kafka broker that scripts/start-cluster.sh brought up.
 * A role that dies is restarted; SIGHUP restarts every role one at a time (a rolling deploy);
 * Ctrl-C stops everything. Role logs: .run/cluster/NAME.log.
 */
import { join } from 'node:path';
import { Supervisor, type RoleSpec } from './supervisor.js';

const env = process.env;
if (!env.REDIS_CLUSTER_NODES || !env.KAFKA_BROKERS) {
  process.stderr.write('start-cluster: REDIS_CLUSTER_NODES and KAFKA_BROKERS must be set (run it through npm run start:cluster)\n');
  process.exit(2);
}
const host = env.HOST ?? '127.0.0.1';
const frontPort = Number(env.PORT ?? 8080);
const num = (name: string, fallback: number): number => Number(env[name] ?? fallback);

/** Two of a role on two ports, told apart by name. */
function pair(role: string, entry: string, portVar: string, first: number, step = 1, extra: (i: number, port: number) => Record<string, string> = () => ({})): RoleSpec[] {
  return [0, 1].map((i) => {
    const port = first + i * step;
    return { name: `${role}-${i + 1}`, entry, port, env: { [portVar]: String(port), ...extra(i, port) } };
  });
}

const roles: RoleSpec[] = [
  { name: 'router', entry: 'apps/router/src/main.ts', port: num('ROUTER_PORT', 8090), env: { ROUTER_PORT: String(num('ROUTER_PORT', 8090)) } },
  ...pair('processor', 'apps/processor/src/main.ts', 'PROCESSOR_PORT', num('PROCESSOR_PORT', 9101), 10),
  ...pair('archiver', 'apps/archiver/src/main.ts', 'ARCHIVER_PORT', num('ARCHIVER_PORT', 9102), 10),
  ...pair('pusher', 'apps/pusher/src/main.ts', 'PUSHER_PORT', num('PUSHER_PORT', 9103), 10),
  // Each connector its own Bilibili TCP port (2243, 2244): /v1/route names each with its connector.
  ...pair('connector', 'apps/connector/src/main.ts', 'CONNECTOR_PORT', num('CONNECTOR_PORT', 8091), 1, (i, port) => ({
    CONNECTOR_PUBLIC_URL: `http://${host}:${port}`,
    DANMAKU_BILI_TCP_PORT: String(num('DANMAKU_BILI_TCP_PORT', 2243) + i),
  })),
  ...pair('front', 'apps/front/src/main.ts', 'PORT', frontPort),
];

// A role may take minutes to answer /readyz on a loaded machine (compiling, joining its group):
// watched that long, at the start and after each restart, before it counts as not ready.
const supervisor = new Supervisor({ roles, env: { ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'info' }, logDir: join(process.cwd(), '.run', 'cluster'), readyTimeoutMs: 240_000 });
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('stopping every role...\n');
  await supervisor.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
// A deploy, rehearsed: every role restarted one at a time (SIGTERM, so each drains), under load.
let rolling = false;
process.on('SIGHUP', () => {
  if (rolling || stopping) return;
  rolling = true;
  const started = Date.now();
  supervisor.rollingRestart().then(
    () => process.stdout.write(`rolling restart done in ${Date.now() - started} ms\n`),
    (err: unknown) => process.stdout.write(`rolling restart failed: ${(err as Error).message}\n`),
  ).finally(() => (rolling = false));
});

await supervisor.start();
process.stdout.write(`
Danmaku cluster topology is up (Redis Cluster ${env.REDIS_CLUSTER_NODES}, Kafka ${env.KAFKA_BROKERS}):
  fronts      http://${host}:${frontPort}  http://${host}:${frontPort + 1}   (whole public API, GET /v1/route)
  connectors  ${roles.filter((r) => r.name.startsWith('connector')).map((r) => `http://${host}:${r.port} (Bilibili TCP ${r.env?.DANMAKU_BILI_TCP_PORT})`).join('  ')}
  router      http://${host}:${roles[0]?.port}
  processors, archivers, pushers: /metrics on ${roles.filter((r) => /^(processor|archiver|pusher)/.test(r.name)).map((r) => r.port).join(', ')}
A role that dies is restarted (try kill -9 on any). Logs: .run/cluster/*.log. Ctrl-C stops everything.
Rolling restart (each role in turn gets SIGTERM, drains, and is started again once it exited): kill -HUP ${process.pid}
`);
