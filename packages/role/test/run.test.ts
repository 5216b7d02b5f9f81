import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineRole, runRoles, type OpenResources, type Role } from '@danmaku/role';
import { createLogger } from '@danmaku/observability';
import { testConfig } from '@danmaku/testkit';

/** What these roles share: a journal of what happened, in order. */
interface Journal {
  readonly embedded: boolean;
  readonly name: string;
  events: string[];
  close(): Promise<void>;
}

const open: OpenResources<Journal> = (_config, _logger, options) => {
  const journal: Journal = {
    ...options,
    events: [`open ${options.name}`],
    close: async () => {
      journal.events.push('close');
    },
  };
  return journal;
};

/** A role that asks for less than the process offers: only the journal's events. */
function role(name: string, fail = false): Role<{ port: number }, Pick<Journal, 'events'>> {
  return defineRole(name, ['port'], async ({ settings, shared }) => {
    if (fail) throw new Error(`${name} cannot start`);
    shared.events.push(`start ${name} on ${settings.port}`);
    return { ready: Promise.resolve(), stop: async () => void shared.events.push(`stop ${name}`) };
  });
}

const logger = createLogger('role-test', 'silent');

test('roles start in order with their slice of the config, stop in reverse, then the shared resources close', async () => {
  const config = testConfig({ port: 8123 });
  const running = await runRoles(config, logger, [role('a'), role('b')], { name: 'p', open });
  await running.ready;
  assert.equal(running.shared.embedded, true, 'two roles share one process');
  await running.stop();
  assert.deepEqual(running.shared.events, ['open p', 'start a on 8123', 'start b on 8123', 'stop b', 'stop a', 'close']);
});

test('a role that fails to start stops the ones before it and closes what they shared', async () => {
  let journal: Journal | null = null;
  const opened: OpenResources<Journal> = (...args) => (journal = open(...args));
  await assert.rejects(runRoles(testConfig(), logger, [role('a'), role('b', true)], { name: 'q', embedded: false, open: opened }), /b cannot start/);
  assert.equal((journal as Journal | null)?.embedded, false);
  assert.deepEqual((journal as Journal | null)?.events, ['open q', `start a on ${testConfig().port}`, 'stop a', 'close']);
});
