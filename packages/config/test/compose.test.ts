import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { SETTINGS } from '@danmaku/config';

/**
 * compose.yaml cannot run here (no container engine), so it is checked as a document: every
 * service is a role of the image or a known engine, and every setting it gives a role exists in
 * the config table, so a typo cannot silently leave a role on its default.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ROLES = ['front', 'processor', 'archiver', 'router', 'connector', 'pusher'];
const ENGINES: Record<string, RegExp> = { kafka: /^apache\/kafka:/, redis: /^redis:/, mariadb: /^mariadb:/ };

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, unknown> | string[];
  ports?: string[];
}

function envOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((e) => [e.split('=')[0] as string, e.slice(e.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v ?? '')]));
}

const compose = parse(readFileSync(`${ROOT}compose.yaml`, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const known = new Set<string>(Object.values(SETTINGS).map((s) => s.env));

describe('compose.yaml', () => {
  test('every service is a role of the image or an engine; two of every role', () => {
    const roleCount = new Map<string, number>();
    const engines = new Map<string, number>();
    for (const [name, service] of services) {
      const command = Array.isArray(service.command) ? service.command : service.command?.split(' ');
      const role = command?.[0];
      if (role && ROLES.includes(role)) {
        assert.ok(service.build === '.' && service.image?.startsWith('danmaku'), `${name}: built from this repository's Dockerfile`);
        assert.ok(existsSync(`${ROOT}apps/${role}/src/main.ts`), `${name}: role ${role} exists`);
        roleCount.set(role, (roleCount.get(role) ?? 0) + 1);
        continue;
      }
      const engine = Object.keys(ENGINES).find((e) => ENGINES[e]!.test(service.image ?? ''));
      assert.ok(engine, `${name}: neither a role (command ${JSON.stringify(service.command)}) nor a known engine (image ${service.image})`);
      engines.set(engine, (engines.get(engine) ?? 0) + 1);
    }
    for (const role of ROLES) assert.ok((roleCount.get(role) ?? 0) >= 2, `two of ${role}, got ${roleCount.get(role) ?? 0}`);
    assert.ok((engines.get('redis') ?? 0) >= 6, 'a Redis Cluster of at least 3 primaries and 3 replicas');
    assert.ok((engines.get('mariadb') ?? 0) >= 1);
    assert.ok((engines.get('kafka') ?? 0) >= 1);
  });

  test('every variable set on a role is a setting of the config table, and the essentials are set', () => {
    for (const [name, service] of services) {
      const command = Array.isArray(service.command) ? service.command : [];
      if (!ROLES.includes(command[0] ?? '')) continue;
      const env = envOf(service);
      const unknown = Object.keys(env).filter((k) => !known.has(k));
      assert.deepEqual(unknown, [], `${name}: variables not in packages/config SETTINGS`);
      for (const needed of ['KAFKA_BROKERS', 'MYSQL_URL', 'REDIS_CLUSTER_NODES', 'DANMAKU_JWT_SECRET', 'HOST']) assert.ok(env[needed], `${name} sets ${needed}`);
      // The development secret must never reach a deployment: compose refuses to start without one.
      assert.match(env.DANMAKU_JWT_SECRET!, /^\$\{DANMAKU_JWT_SECRET:\?/);
      for (const node of env.REDIS_CLUSTER_NODES!.split(',')) assert.ok(compose.services[node.split(':')[0]!], `${name}: Redis node ${node} is a service`);
      assert.ok(compose.services[env.KAFKA_BROKERS!.split(':')[0]!], `${name}: the Kafka broker is a service`);
      assert.ok(compose.services[new URL(env.MYSQL_URL!).hostname], `${name}: MariaDB is a service`);
    }
  });

  test('Kafka 4 runs in KRaft mode; the roles create their topic with no more copies than brokers; dependencies name real services', () => {
    const kafka = compose.services.kafka!;
    const env = envOf(kafka);
    assert.match(env.KAFKA_PROCESS_ROLES ?? '', /controller/, 'KRaft: the broker is its own controller');
    assert.match(kafka.image ?? '', /^apache\/kafka:4\./, 'Kafka 4, as the tests run');
    assert.ok(!services.some(([name]) => /zookeeper/i.test(name)), 'no ZooKeeper');
    const brokers = services.filter(([, s]) => ENGINES.kafka?.test(s.image ?? '') && !s.entrypoint).length;
    for (const [name, service] of services.filter(([, s]) => s.build)) {
      const replication = Number(envOf(service).DANMAKU_KAFKA_REPLICATION ?? SETTINGS.kafkaReplication.default);
      assert.ok(replication >= 1 && replication <= brokers, `${name}: replication ${replication} with ${brokers} broker(s)`);
    }
    for (const [name, service] of services) {
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) assert.ok(compose.services[dep], `${name} depends on ${dep}, which exists`);
    }
  });

  test('the image runs each role by command', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
    assert.match(dockerfile, /^FROM node:\d+/m);
    assert.match(dockerfile, /^ENTRYPOINT \["sh", "scripts\/role\.sh"\]/m);
    const script = readFileSync(`${ROOT}scripts/role.sh`, 'utf8');
    for (const role of [...ROLES, 'standalone']) assert.ok(script.includes(role), `role.sh runs ${role}`);
    const wrong = spawnSync('sh', [`${ROOT}scripts/role.sh`, 'frnot'], { encoding: 'utf8' });
    assert.equal(wrong.status, 64, 'an unknown role is refused, not run');
    assert.match(wrong.stderr, /unknown role "frnot"/);
    const ignore = readFileSync(`${ROOT}.dockerignore`, 'utf8');
    assert.match(ignore, /^node_modules$/m, 'the host node_modules stays out of the image');
  });
});
