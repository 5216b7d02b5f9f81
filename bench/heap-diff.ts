/**
 * `bash scripts/node.sh --conditions=source --import tsx bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot CONNECTIONS`
 *
 * What CONNECTIONS idle connections add to a process's heap, per connection and by constructor
 * (see bench/lib/heap-diff.ts). `npm run bench -- connections --heap` takes the two snapshots of
 * the connector and prints this table itself; this reads any pair, from anywhere (a production
 * node's `--heapsnapshot-signal` included).
 */
import { diff, formatDiff, summarize } from './lib/heap-diff.js';

const [before, after, n] = process.argv.slice(2);
if (!before || !after || !(Number(n) > 0)) {
  process.stderr.write('usage: bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot CONNECTIONS\n');
  process.exit(64);
}
process.stdout.write(`${formatDiff(diff(summarize(before), summarize(after), Number(n)))}\n`);
