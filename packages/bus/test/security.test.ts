import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '@danmaku/config';
import { kafkaSecurity } from '@danmaku/bus';

test('TLS and SASL settings reach the Kafka client as its ssl and sasl options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-ca-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const config = loadConfig({ KAFKA_SSL_CA: ca, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'danmaku', KAFKA_SASL_PASSWORD: 'pw' });
  const security = kafkaSecurity(config);
  assert.deepEqual(security, { ssl: { ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'] }, sasl: { mechanism: 'scram-sha-512', username: 'danmaku', password: 'pw' } });

  const plainTls = loadConfig({ KAFKA_SSL: 'true' });
  assert.deepEqual(kafkaSecurity(plainTls), { ssl: true });
  const none = loadConfig({});
  assert.deepEqual(kafkaSecurity(none), {});
});

test('an unknown SASL mechanism is refused at start, naming the setting', () => {
  assert.throws(() => loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi' }), (err: unknown) => err instanceof ConfigError && /KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512/.test(err.message));
});
