/** `POST /v1/client-metrics`, the SDK's connection reports: validated, counted in Prometheus metrics, 202. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, uniqueRoom } from '@danmaku/testkit';

describe('client metrics', () => {
  let system: Standalone;
  before(async () => {
    system = await startStandalone(testConfig({ cluster: uniqueRoom('cluster') }), createLogger('test', 'silent'), { connector: false });
  });
  after(() => system.stop());

  const post = (body: unknown) =>
    fetch(`${system.url}/v1/client-metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const metric = async (line: string) => {
    const text = await (await fetch(`${system.url}/metrics`)).text();
    const found = text.split('\n').find((l) => l.startsWith(line + ' '));
    return found ? Number(found.slice(line.length + 1)) : 0;
  };

  it('counts valid reports and refuses bad ones with the error shape', async () => {
    const failedBefore = await metric('danmaku_client_events_total{kind="connect_failed",mode="long"}');
    const connectsBefore = await metric('danmaku_client_connect_seconds_count{mode="long"}');
    const res = await post({
      sdk: 'test',
      samples: [
        { kind: 'connect', mode: 'long', ms: 120 },
        { kind: 'connect_failed', mode: 'long' },
        { kind: 'connect_failed', mode: 'long' },
        { kind: 'delivery', mode: 'short', ms: 900 },
      ],
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { ok: true, accepted: 4 });
    assert.equal(await metric('danmaku_client_events_total{kind="connect_failed",mode="long"}'), failedBefore + 2);
    assert.equal(await metric('danmaku_client_connect_seconds_count{mode="long"}'), connectsBefore + 1);

    for (const bad of [{}, { samples: [] }, { samples: [{ kind: 'teleport', mode: 'long' }] }, { samples: [{ kind: 'connect', mode: 'long', ms: -1 }] }]) {
      const refused = await post(bad);
      assert.equal(refused.status, 400, JSON.stringify(bad));
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'invalid_request');
    }
  });
});
