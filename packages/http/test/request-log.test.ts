import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger, type Logger } from '@danmaku/observability';

/** A server whose log lines land in `lines`, and a count of pino children made. */
async function server(level = 'info'): Promise<{ app: FastifyInstance; lines: Record<string, unknown>[]; children: () => number }> {
  const lines: Record<string, unknown>[] = [];
  const logger: Logger = createLogger('test', level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  let made = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<Logger['child']>) => {
    made++;
    return child(...args);
  }) as Logger['child'];
  const app = createHttpServer({ logger, app: 'test' });
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/boom', async () => {
    throw new Error('kaboom');
  });
  app.get('/chatty', async (request) => {
    request.log.info({ step: 1 }, 'first');
    request.log.debug('below the level');
    request.log.warn('second');
    return { ok: true };
  });
  await app.ready();
  return { app, lines, children: () => made };
}

describe('request logger', () => {
  test('an error log line carries the request id; a request that logs nothing makes no child logger', async () => {
    const { app, lines, children } = await server();
    const baseline = children();
    for (let i = 0; i < 3; i++) assert.equal((await app.inject({ url: '/quiet' })).statusCode, 200);
    assert.equal(children(), baseline, 'no pino child for requests that log nothing');
    assert.equal(lines.length, 0);

    const res = await app.inject({ url: '/boom' });
    assert.equal(res.statusCode, 500);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'internal_error');
    const errorLine = lines.find((line) => line.msg === 'request failed');
    assert.ok(errorLine, 'the error is logged');
    assert.equal(errorLine.level, 50);
    assert.match(String(errorLine.reqId), /^req-/);
    assert.equal((errorLine.err as { message: string }).message, 'kaboom');
    assert.equal(errorLine.name, 'test', 'the parent logger bindings are kept');
    await app.close();
  });

  test('every line of one request carries its id, levels below the logger are dropped', async () => {
    const { app, lines } = await server();
    await app.inject({ url: '/chatty' });
    await app.inject({ url: '/chatty' });
    assert.deepEqual(
      lines.map((line) => [line.msg, line.level]),
      [
        ['first', 30],
        ['second', 40],
        ['first', 30],
        ['second', 40],
      ],
    );
    assert.equal(lines[0]?.step, 1);
    assert.equal(lines[0]?.reqId, lines[1]?.reqId);
    assert.equal(lines[2]?.reqId, lines[3]?.reqId);
    assert.notEqual(lines[0]?.reqId, lines[2]?.reqId);
    assert.match(String(lines[0]?.reqId), /^req-/);
    await app.close();
  });

  test('at debug level, debug lines of a request are written with its id', async () => {
    const { app, lines } = await server('debug');
    await app.inject({ url: '/chatty' });
    const debug = lines.find((line) => line.msg === 'below the level');
    assert.ok(debug);
    assert.equal(debug.reqId, lines.find((line) => line.msg === 'first')?.reqId);
    await app.close();
  });
});
