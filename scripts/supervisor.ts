/**
 * A small process supervisor for the split topology: starts each role as its own node process,
 * waits until its /readyz answers, restarts a role that dies (kill -9 included) with a short
 * backoff, and stops everything on request. A library first (fault tests drive it: kill a role,
 * wait for its restart); scripts/start-cluster.ts is its command-line use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgs } from '@danmaku/role/entry';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface RoleSpec {
  /** Unique name, e.g. `front-1`. */
  name: string;
  /** TypeScript entry point relative to the repo, e.g. `apps/front/src/main.ts`; a role runs its compiled dist/ file (`@danmaku/role/entry`). */
  entry: string;
  /** Port whose GET /readyz tells the role is ready (and what is printed). */
  port: number;
  env?: Record<string, string>;
  /** What a user opens, when it is not http://127.0.0.1:port. */
  url?: string;
}

export interface SupervisorOptions {
  roles: RoleSpec[];
  /** Environment of every role (process.env by default), before each role's own env. */
  env?: NodeJS.ProcessEnv;
  /** Each role's stdout and stderr go to DIR/NAME.log (default: inherited, interleaved). */
  logDir?: string;
  /** How long a role may take to become ready (default 60 s). */
  readyTimeoutMs?: number;
  /** Status lines ("front-1 ready on ..."); default: stdout. */
  log?: (line: string) => void;
}

interface Running {
  spec: RoleSpec;
  child: ChildProcess | null;
  restarts: number;
  ready: boolean;
  /** Consecutive crashes without becoming ready: the backoff grows with it. */
  crashes: number;
  /** Stopped on purpose by restart(): started again at once, not counted as a crash. */
  restarting: boolean;
  out: WriteStream | null;
  timer: NodeJS.Timeout | null;
}

export type SupervisorEvent = 'ready' | 'exit' | 'restart';

export class Supervisor extends EventEmitter {
  private readonly roles = new Map<string, Running>();
  private stopping = false;
  private readonly log: (line: string) => void;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
    for (const spec of options.roles) {
      if (this.roles.has(spec.name)) throw new Error(`two roles named ${spec.name}`);
      this.roles.set(spec.name, { spec, child: null, restarts: 0, ready: false, crashes: 0, restarting: false, out: null, timer: null });
    }
    if (options.logDir) mkdirSync(options.logDir, { recursive: true });
  }

  /**
   * Starts every role in order, each once the previous one is ready; with `parallel`, launches
   * them all at once and waits for all (a test topology starts in a fraction of the time).
   */
  async start(options: { parallel?: boolean } = {}): Promise<void> {
    if (options.parallel) {
      for (const role of this.roles.values()) this.launch(role);
      await Promise.all([...this.roles.keys()].map((name) => this.waitReady(name)));
      return;
    }
    for (const role of this.roles.values()) {
      this.launch(role);
      await this.waitReady(role.spec.name);
    }
  }

  names(): string[] {
    return [...this.roles.keys()];
  }

  pid(name: string): number | undefined {
    return this.role(name).child?.pid;
  }

  restarts(name: string): number {
    return this.role(name).restarts;
  }

  isReady(name: string): boolean {
    return this.role(name).ready;
  }

  /** Sends a signal to a role (SIGKILL by default); the supervisor restarts it. */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    this.role(name).child?.kill(signal);
  }

  /** Resolves when the role is ready (after `afterRestarts` restarts, when given). */
  async waitReady(name: string, afterRestarts = 0, timeoutMs = this.options.readyTimeoutMs ?? 60_000): Promise<void> {
    const role = this.role(name);
    const deadline = Date.now() + timeoutMs;
    while (!(role.ready && role.restarts >= afterRestarts)) {
      if (this.stopping) throw new Error('supervisor stopping');
      if (Date.now() > deadline) throw new Error(`${name} not ready within ${timeoutMs} ms (restarts ${role.restarts})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * A deploy of one role: SIGTERM (the role drains: /readyz 503, a connector moves its clients
   * over DANMAKU_DRAIN_MS, a consumer commits and leaves its group), a new process as soon as the
   * old one exited, and resolves once that one is ready. SIGKILL after `killAfterMs`.
   */
  async restart(name: string, killAfterMs = 60_000): Promise<void> {
    const role = this.role(name);
    const child = role.child;
    const restarts = role.restarts;
    if (child && child.exitCode === null && child.signalCode === null) {
      role.restarting = true;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    await this.waitReady(name, restarts + 1);
  }

  /** Restarts every role, one at a time (each ready before the next goes), in start order. */
  async rollingRestart(names = this.names()): Promise<void> {
    for (const name of names) {
      const started = Date.now();
      this.log(`rolling restart: ${name}`);
      await this.restart(name);
      this.log(`rolling restart: ${name} back in ${Date.now() - started} ms`);
    }
  }

  /** Stops every role (SIGTERM, then SIGKILL after graceMs) and restarts none. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const role of [...this.roles.values()].reverse()) {
      if (role.timer) clearTimeout(role.timer);
      const child = role.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          child.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(exits);
    for (const role of this.roles.values()) role.out?.end();
  }

  private role(name: string): Running {
    const role = this.roles.get(name);
    if (!role) throw new Error(`no role ${name}`);
    return role;
  }

  private launch(role: Running): void {
    const { spec } = role;
    role.ready = false;
    const toFile = Boolean(this.options.logDir);
    if (toFile && !role.out) role.out = createWriteStream(join(this.options.logDir as string, `${spec.name}.log`), { flags: 'a' });
    const child = spawn(process.execPath, nodeArgs(ROOT, spec.entry), {
      cwd: ROOT,
      env: { ...(this.options.env ?? process.env), ...spec.env },
      // stdin stays a pipe: roles that watch stdin end with the supervisor.
      stdio: ['pipe', toFile ? 'pipe' : 'inherit', toFile ? 'pipe' : 'inherit'],
    });
    role.child = child;
    if (toFile) {
      child.stdout?.pipe(role.out as WriteStream, { end: false });
      child.stderr?.pipe(role.out as WriteStream, { end: false });
    }
    child.once('exit', (code, signal) => {
      role.ready = false;
      this.emit('exit', spec.name, code, signal);
      if (this.stopping) return;
      const planned = role.restarting;
      role.restarting = false;
      if (!planned) role.crashes++;
      const delay = planned ? 0 : Math.min(250 * 2 ** (role.crashes - 1), 5000);
      this.log(planned ? `${spec.name} stopped (${signal ?? `code ${code}`}); starting it again` : `${spec.name} exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      role.timer = setTimeout(() => {
        role.timer = null;
        if (this.stopping) return;
        role.restarts++;
        this.emit('restart', spec.name, role.restarts);
        this.launch(role);
      }, delay);
    });
    void this.watchReady(role, child);
  }

  private async watchReady(role: Running, child: ChildProcess): Promise<void> {
    const url = `http://127.0.0.1:${role.spec.port}/readyz`;
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    while (role.child === child && child.exitCode === null && child.signalCode === null && Date.now() < deadline && !this.stopping) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) {
          role.ready = true;
          role.crashes = 0;
          this.log(`${role.spec.name} ready on ${role.spec.url ?? `http://127.0.0.1:${role.spec.port}`} (pid ${child.pid}${role.restarts ? `, restart ${role.restarts}` : ''})`);
          this.emit('ready', role.spec.name);
          return;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
