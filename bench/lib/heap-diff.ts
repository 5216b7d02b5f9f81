import { readFileSync } from 'node:fs';

/**
 * Heap snapshots (V8's .heapsnapshot JSON) summed by what each object is, and two of them
 * diffed: what N connections add to a heap, per connection, object by object. A snapshot is
 * taken after a full collection, so only what is still reachable counts.
 */

export interface HeapEntry {
  count: number;
  bytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** The row an object counts under: constructor name for objects, function name for closures, the kind for strings and numbers. */
function keyOf(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name;
    case 'closure':
      return `closure ${name || '(anonymous)'}`;
    case 'string':
    case 'concatenated string':
    case 'sliced string':
    case 'number':
    case 'bigint':
    case 'symbol':
      return `(${type})`;
    default:
      // hidden, array, code, object shape, synthetic: V8's own name ("system / Map", "(object elements)").
      return `(${type}) ${name.length > 60 ? `${name.slice(0, 57)}...` : name}`;
  }
}

export function summarize(path: string): Map<string, HeapEntry> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, HeapEntry>();
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const key = keyOf(types[nodes[i + typeAt] as number] as string, strings[nodes[i + nameAt] as number] as string);
    const entry = out.get(key);
    const size = nodes[i + sizeAt] as number;
    if (entry) {
      entry.count++;
      entry.bytes += size;
    } else out.set(key, { count: 1, bytes: size });
  }
  return out;
}

export interface HeapDiffRow {
  name: string;
  /** Objects added per connection (fractions: one object shared by every tenth connection is 0.1). */
  countPerConnection: number;
  bytesPerConnection: number;
}

/** What `after` holds beyond `before`, per connection, biggest first. */
export function diff(before: Map<string, HeapEntry>, after: Map<string, HeapEntry>, connections: number): { rows: HeapDiffRow[]; totalBytesPerConnection: number } {
  const rows: HeapDiffRow[] = [];
  let total = 0;
  for (const [name, a] of after) {
    const b = before.get(name) ?? { count: 0, bytes: 0 };
    const bytes = a.bytes - b.bytes;
    total += bytes;
    rows.push({ name, countPerConnection: (a.count - b.count) / connections, bytesPerConnection: bytes / connections });
  }
  for (const [name, b] of before) if (!after.has(name)) total -= b.bytes;
  rows.sort((x, y) => y.bytesPerConnection - x.bytesPerConnection);
  return { rows, totalBytesPerConnection: total / connections };
}

/** A markdown table of the rows above `minBytes` per connection. */
export function formatDiff(result: { rows: HeapDiffRow[]; totalBytesPerConnection: number }, minBytes = 16, limit = 40): string {
  const lines = ['| object | per connection | bytes per connection |', '|---|---|---|'];
  for (const r of result.rows.slice(0, limit)) {
    if (r.bytesPerConnection < minBytes) break;
    lines.push(`| ${r.name.replace(/\|/g, '\\|').replace(/\n/g, ' ')} | ${r.countPerConnection.toFixed(2)} | ${Math.round(r.bytesPerConnection)} |`);
  }
  lines.push(`| **all** | | **${Math.round(result.totalBytesPerConnection)}** |`);
  return lines.join('\n');
}
