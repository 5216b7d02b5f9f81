import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './cannon.js';
import { REPO_ROOT } from '@danmaku/testkit';

/** The table every bench prints: one row per run, with its ratio to the baseline row. */
export function printTable(title: string, rows: LoadResult[], baseline: LoadResult): void {
  const header = ['run', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'non-2xx', 'vs baseline', 'server CPU us/req'];
  const lines = rows.map((r) => [
    r.name,
    String(r.reqPerSec),
    String(r.latencyMs.p50),
    String(r.latencyMs.p90),
    String(r.latencyMs.p99),
    String(r.errors + r.timeouts),
    String(r.non2xx),
    `${Math.round((r.reqPerSec / Math.max(1, baseline.reqPerSec)) * 100)} %`,
    r.serverCpuUsPerReq === null ? '-' : String(r.serverCpuUsPerReq),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  process.stdout.write(`\n${title}\n${fmt(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const line of lines) process.stdout.write(`${fmt(line)}\n`);
}

/** Writes bench/results/<name>-<timestamp>.json and bench/results/<name>-latest.json; returns the first path. */
export function writeResult(name: string, data: Record<string, unknown>): string {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const payload = JSON.stringify(
    { bench: name, at: new Date().toISOString(), machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadavgAtEnd: loadavg() }, ...data },
    null,
    2,
  );
  const path = join(dir, `${name}-${stamp}.json`);
  writeFileSync(path, payload + '\n');
  writeFileSync(join(dir, `${name}-latest.json`), payload + '\n');
  return path;
}

export const ratio = (a: LoadResult, b: LoadResult): number => Math.round((a.reqPerSec / Math.max(1, b.reqPerSec)) * 100) / 100;
