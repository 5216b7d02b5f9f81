/**
 * The baseline server of the benches: Fastify hello-world (GET /) and a JSON echo (POST /echo),
 * no plugins, no logging. With REDIS_URL, POST /echo-redis answers like /echo after one Redis
 * round trip (INCR): the least a send that checks anything shared can do. With HELLO_STATIC_BODY,
 * GET /static answers that ready string (content type HELLO_STATIC_TYPE): what Fastify needs to
 * send the bytes of a cached answer, without any lookup. Run as its own process
 * so it is measured exactly like the real server.
 */
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
app.post('/echo', async (_request, reply) => reply.code(202).send({ ok: true }));
const redis = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : null;
if (redis) {
  app.post('/echo-redis', async (_request, reply) => {
    await redis.incr('bench:echo-redis');
    return reply.code(202).send({ ok: true });
  });
}
const staticBody = process.env.HELLO_STATIC_BODY;
if (staticBody !== undefined) {
  const staticType = process.env.HELLO_STATIC_TYPE ?? 'application/json; charset=utf-8';
  app.get('/static', (_request, reply) => {
    void reply.type(staticType).send(staticBody);
  });
}
const port = Number(process.env.PORT ?? 0);
await app.listen({ host: '127.0.0.1', port });
const address = app.server.address();
process.stdout.write(`listening on ${typeof address === 'object' && address ? address.port : port}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
