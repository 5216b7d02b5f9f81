/**
 * The baseline of the fan-out bench: what most teams build first. One process, a plain HTTP
 * endpoint that takes a message and a socket.io server that emits it to the room at once, one
 * packet per message per socket. No store, no merging: the cheapest possible path per message.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const server = createServer((req, res) => {
  if (req.method !== 'POST' || !req.url?.startsWith('/send/')) {
    res.writeHead(404).end();
    return;
  }
  const roomId = decodeURIComponent(req.url.slice('/send/'.length));
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    const { content } = JSON.parse(body) as { content: string };
    const seq = (seqs.get(roomId) ?? 0) + 1;
    seqs.set(roomId, seq);
    const message = { id: `${seq}`, roomId, type: 'comment', seq, ts: Date.now(), user: { id: 'bench', name: 'bench' }, content };
    io.to(roomId).emit('message', message);
    res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: message.id, ts: message.ts }));
  });
});
const seqs = new Map<string, number>();
const io = new Server(server, { serveClient: false, perMessageDeflate: false, pingInterval: 25_000, pingTimeout: 20_000 });
io.on('connection', (socket) => {
  socket.on('join', ({ roomId }: { roomId: string }, ack: (a: unknown) => void) => {
    void socket.join(roomId);
    ack({ ok: true });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`baseline listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
