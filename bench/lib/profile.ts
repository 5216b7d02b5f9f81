import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@danmaku/testkit';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** A fresh directory under .run/ for `node --cpu-prof` output, and the flags that write there. */
export function profileDir(bench: string): { dir: string; flags: string[] } {
  const dir = join(REPO_ROOT, '.run', `${bench}-prof-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return { dir, flags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] };
}

/**
 * Top functions by self time of the busy part, from each profiled process's main thread (a
 * profile is written when the process exits, so stop the servers first).
 */
export function printProfile(dir: string, pids: Record<string, number>, top = 25): void {
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (1 is tsx's loader).
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[4] === '0');
  for (const file of files) {
    const pid = Number(file.split('.')[3]);
    const role = Object.entries(pids).find(([, p]) => p === pid)?.[0] ?? `pid ${pid}`;
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const dt = profile.timeDeltas[i] ?? 0;
      if (!node) return;
      const f = node.callFrame;
      const where = f.url ? `${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages|bench)\//, '$1/')}:${f.lineNumber + 1}` : '';
      const key = `${f.functionName || '(anonymous)'} ${where}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
    const idleUs = self.get('(idle) ') ?? 0;
    const busy = Math.max(1, total - idleUs);
    process.stdout.write(`\n  ${role} profile ${join(dir, file)} (idle ${((idleUs / Math.max(1, total)) * 100).toFixed(0)} %), top self time of the busy part:\n`);
    const rows = [...self.entries()].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [name, us] of rows) process.stdout.write(`    ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${name}\n`);
  }
}
