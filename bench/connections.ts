export {};
/**
 * `npm run bench -- connections [--clients 10000] [--workers 4] [--settle 30] [--warmup 1000] [--heap] [--wires socketio,bilibili-ws,bilibili-tcp] [--hold 3] [--connectorFlags "..."] [--connector-workers N|auto] [--max-seconds 900] [--min-available-mb 1536] [--max-failures N]`
 *
 * Idle connections on each wire of one connector (socket.io, the Bilibili protocol on WebSocket
 * /sub and on raw TCP), opened from worker processes as fast as the connector takes them: KB of
 * connector RSS per connection, connections per second, and RSS `--settle` seconds after they all
 * closed against the RSS before. `--heap` adds heap snapshots of the connector before and with the
 * clients, diffed by constructor (what one connection keeps, object by object; its RSS figures then
 * include the snapshots' own memory). `--hold S` keeps the crowd S seconds before the readings;
 * then `ss` counts it and one comment goes to the room holding all of them (delivery p99, lost).
 * The clients come from several loopback source addresses (127.0.0.x) past 20,000, and as many
 * workers as the open-files limit needs. One connector process holds no more than that limit
 * allows: past it the connector runs as several worker processes behind the same ports
 * (DANMAKU_CONNECTOR_WORKERS), as many as --clients needs, or `--connector-workers N|auto`
 * (`--connector-workers 1` keeps one process and measures what it holds, said so). RSS, `ss` and
 * the comment to all cover every process of the connector.
 *
 * The crowd is opened as a ramp with ceilings: it stops opening clients when the machine's
 * MemAvailable falls under `--min-available-mb` (1536), when more than `--max-failures` clients
 * failed (1 % of --clients, at least 100), or after `--max-seconds` (900), and measures what it
 * holds, printing what stopped it. A million-connection attempt:
 *   npm run bench -- connections --clients 1000000 --wires bilibili-tcp --connector-workers auto --hold 60
 * The fan-out bench's machinery in its `connections` mode.
 */
const argv = process.argv.slice(2);
const has = (flag: string): boolean => argv.some((a) => a === flag || a.startsWith(`${flag}=`));
// `--wires socketio,bilibili-ws,bilibili-tcp` (the load tool's names) for `--systems ours,bili,bili-tcp`.
const WIRES: Record<string, string> = { socketio: 'ours', 'bilibili-ws': 'bili', 'bilibili-tcp': 'bili-tcp' };
const wiresAt = process.argv.findIndex((a) => a === '--wires' || a.startsWith('--wires='));
if (wiresAt >= 0) {
  const [flag] = process.argv.splice(wiresAt, 1) as [string];
  const value = flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : (process.argv.splice(wiresAt, 1)[0] ?? '');
  const systems = value.split(',').map((w) => {
    const system = WIRES[w];
    if (!system) throw new Error(`--wires: unknown wire ${w} (one of ${Object.keys(WIRES).join(', ')})`);
    return system;
  });
  process.argv.push('--systems', systems.join(','));
}
process.argv.push('--mode', 'connections');
if (!has('--clients')) process.argv.push('--clients', '10000');
if (wiresAt < 0 && !has('--systems') && !has('--only')) process.argv.push('--systems', 'ours,bili,bili-tcp');
await import('./fanout.js');
