import { readFileSync, readdirSync } from 'node:fs';
import autocannon from 'autocannon';

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), counted after the command name: indexes 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU seconds per thread kind of a process (threads of one name summed: "node" is the main
 * thread, "V8 DefaultWorke" the GC and compiler helpers, "libuv-worker" the thread pool), to tell
 * the event loop's work from the engine's work behind it.
 */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

export interface LoadSpec {
  name: string;
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationS: number;
  /** The server's pid (or every process of it: roles, a broker), to report its CPU per request (steadier than req/s on a shared machine). */
  serverPid?: number | number[];
}

export interface LoadResult {
  name: string;
  url: string;
  method: string;
  connections: number;
  durationS: number;
  requests: number;
  reqPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Answers with a 2xx status (for sends: messages accepted). */
  ok2xx: number;
  throughputMBps: number;
  /** Server CPU (user + system) per answered request, in microseconds; null when not measured. */
  serverCpuUsPerReq: number | null;
}

/** One bounded autocannon run (duration in seconds), summarised. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const pids = spec.serverPid === undefined ? [] : [spec.serverPid].flat();
  const cpuBefore = pids.length > 0 ? cpuOf(pids) : null;
  const result = await autocannon({
    url: spec.url,
    method: spec.method ?? 'GET',
    headers: spec.headers,
    body: spec.body,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 10,
  });
  return summarise(spec, result, cpuPerRequest(pids, cpuBefore, result.requests.total));
}

/** CPU seconds of several processes together; null when one of them is gone. */
function cpuOf(pids: number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s === null) return null;
    sum += s;
  }
  return sum;
}

function cpuPerRequest(pids: number[], before: number | null, requests: number): number | null {
  if (pids.length === 0 || before === null || requests === 0) return null;
  const after = cpuOf(pids);
  return after === null ? null : Math.round(((after - before) / requests) * 1e6);
}

/** Shared knobs: BENCH_DURATION_S (default 10) and BENCH_CONNECTIONS (default 50). */
export function benchSettings(): { durationS: number; connections: number } {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  if (!(durationS > 0 && durationS <= 600)) throw new Error('BENCH_DURATION_S must be between 1 and 600');
  if (!(connections > 0 && connections <= 2000)) throw new Error('BENCH_CONNECTIONS must be between 1 and 2000');
  return { durationS, connections };
}

/** An autocannon result in the shape every bench reports (and writes to bench/results/). */
export function summarise(
  spec: Pick<LoadSpec, 'name' | 'url' | 'method' | 'connections' | 'durationS'>,
  result: autocannon.Result,
  serverCpuUsPerReq: number | null,
): LoadResult {
  return {
    name: spec.name,
    url: spec.url,
    method: spec.method ?? 'GET',
    connections: spec.connections,
    durationS: spec.durationS,
    requests: result.requests.total,
    reqPerSec: Math.round(result.requests.average),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    ok2xx: result['2xx'],
    throughputMBps: Math.round((result.throughput.average / 1e6) * 100) / 100,
    serverCpuUsPerReq,
  };
}
