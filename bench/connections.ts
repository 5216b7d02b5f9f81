export {};
/**
 * `npm run bench -- connections [--clients 10000] [--workers 4] [--settle 30] [--warmup 1000] [--heap] [--systems ours,bili,bili-tcp] [--connectorFlags "..."] [--hold 3]`
 *
 * Idle connections on each wire of one connector (socket.io, the Bilibili protocol on WebSocket
 * /sub and on raw TCP), opened from worker processes as fast as the connector takes them: KB of
 * connector RSS per connection, connections per second, and RSS `--settle` seconds after they all
 * closed against the RSS before. `--heap` adds heap snapshots of the connector before and with the
 * clients, diffed by constructor (what one connection keeps, object by object; its RSS figures then
 * include the snapshots' own memory). The fan-out bench's machinery in its `connections` mode.
 */
const argv = process.argv.slice(2);
const has = (flag: string): boolean => argv.some((a) => a === flag || a.startsWith(`${flag}=`));
process.argv.push('--mode', 'connections');
if (!has('--clients')) process.argv.push('--clients', '10000');
if (!has('--systems') && !has('--only')) process.argv.push('--systems', 'ours,bili,bili-tcp');
await import('./fanout.js');
