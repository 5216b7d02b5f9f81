import { freePort, spawnTs, waitFor } from '@danmaku/testkit';

export interface BenchServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Runs a TypeScript entry of the repo as its own process on 127.0.0.1 (so the load generator
 * never shares the server's event loop) and resolves once it answers `readyPath`.
 */
async function startChild(entry: string, env: NodeJS.ProcessEnv, readyPath: string, nodeFlags: string[] = []): Promise<BenchServer> {
  const port = await freePort();
  // stdin is a pipe and testkit kills its children on exit: a dead bench leaves no server behind.
  const child = spawnTs(entry, { HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env }, [], nodeFlags);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `${entry} to answer ${readyPath}`,
    async () => {
      if (child.child.exitCode !== null) throw new Error(`${entry} exited with ${child.child.exitCode}:\n${child.output()}`);
      return (await fetch(url + readyPath).catch(() => null))?.ok ?? false;
    },
    30_000,
    100,
  ).catch(async (err: unknown) => {
    await child.kill('SIGKILL');
    throw err;
  });
  return {
    url,
    pid: child.child.pid ?? 0,
    async stop() {
      const timer = setTimeout(() => child.child.kill('SIGKILL'), 10_000);
      await child.kill('SIGTERM');
      clearTimeout(timer);
    },
  };
}

/** The system under test: `npm start`'s standalone server (front + processor, in-memory bus). */
export function startStandaloneServer(env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): Promise<BenchServer> {
  return startChild('apps/standalone/src/main.ts', env, '/readyz', nodeFlags);
}

/** The Fastify hello-world baseline (with `REDIS_URL` in env, also POST /echo-redis). */
export function startHelloServer(env: NodeJS.ProcessEnv = {}): Promise<BenchServer> {
  return startChild('bench/lib/hello.ts', env, '/');
}
