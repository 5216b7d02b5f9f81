import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
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

/** Where a sample's own time goes, coarsely: our packages, a dependency, Node's internals, the kernel. */
function areaOf(f: ProfileNode['callFrame']): string {
  if (!f.url) {
    if (/^(writev|writeUtf8String|writeBuffer|writeLatin1String|readv?|close)$/.test(f.functionName)) return 'socket syscalls';
    if (f.functionName === '(garbage collector)') return 'GC';
    return f.functionName.startsWith('(') ? f.functionName : 'V8 / native';
  }
  const ours = /\/(apps|packages)\/([^/]+)\//.exec(f.url);
  if (ours && !f.url.includes('node_modules')) return `ours: ${ours[1]}/${ours[2]}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  if (dep) return dep[1] as string;
  if (f.url.startsWith('node:')) return `node: ${f.url.slice(5).split('/')[0] === 'internal' ? (f.url.split('/')[1] ?? 'internal') : f.url.slice(5)}`;
  return 'other';
}

/**
 * Top functions by self time of the busy part, and the same time by area, from each profiled
 * process's main thread (a profile is written when the process exits, so stop the servers
 * first). The text is printed and kept as bench/results/<bench>-profile-latest.txt (and a stamped
 * copy), the evidence of what a row's cost is made of.
 */
export function printProfile(dir: string, pids: Record<string, number>, top = 25, options: { skipFirstMs?: number } = {}): void {
  // Start-up (module loading, schema compiling) is not what a bench measures: skip it when the
  // bench knows how long after the spawn its measured part began.
  const skipUs = (options.skipFirstMs ?? 0) * 1000;
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[4] === '0');
  let text = '';
  for (const file of files) {
    const pid = Number(file.split('.')[3]);
    const role = Object.entries(pids).find(([, p]) => p === pid)?.[0] ?? `pid ${pid}`;
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    const areas = new Map<string, number>();
    let total = 0;
    let idleUs = 0;
    let at = 0;
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const dt = profile.timeDeltas[i] ?? 0;
      at += dt;
      if (!node || at < skipUs) return;
      const f = node.callFrame;
      total += dt;
      if (f.functionName === '(idle)') {
        idleUs += dt;
        return;
      }
      const where = f.url ? `${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages|bench)\//, '$1/')}:${f.lineNumber + 1}` : '';
      const key = `${f.functionName || '(anonymous)'} ${where}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      const area = areaOf(f);
      areas.set(area, (areas.get(area) ?? 0) + dt);
    });
    const busy = Math.max(1, total - idleUs);
    const share = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
    text += `\n  ${role} profile ${join(dir, file)} (idle ${((idleUs / Math.max(1, total)) * 100).toFixed(0)} %; ${skipUs > 0 ? `from ${(skipUs / 1e6).toFixed(1)} s after start` : 'start-up included'}), top self time of the busy part:\n`;
    for (const [name, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) text += `    ${share(us)}  ${name}\n`;
    text += `  by area:\n`;
    for (const [name, us] of [...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) text += `    ${share(us)}  ${name}\n`;
  }
  process.stdout.write(text);
  const bench = /^(.*)-prof-\d+$/.exec(basename(dir))?.[1] ?? 'bench';
  const results = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const name of [`${bench}-profile-${stamp}.txt`, `${bench}-profile-latest.txt`]) writeFileSync(join(results, name), `${new Date().toISOString()}\n${text}`);
}
