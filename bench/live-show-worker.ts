/**
 * A load process of the live-show bench (run at nice 10 so it does not take the servers' CPU):
 *   KIND=pollers: COUNT pollers spread over ROOMS (comma-separated), each polling its room every
 *     INTERVAL_MS (jittered) with its own cursor, like the SDK's poll mode;
 *   KIND=sender: RATE messages/s into ROOMS (round robin, weighted by the room list), content
 *     `b SENT_AT_MS I` so the viewers measure send -> receive latency; several senders (users).
 * Runs DURATION_S seconds, then prints `done {json}` and exits. URL is a front.
 */
import { httpAgent, sendComment } from './lib/load/clients.js';

const url = process.env.URL as string;
const kind = process.env.KIND as 'pollers' | 'sender';
const rooms = (process.env.ROOMS ?? '').split(',').filter(Boolean);
const count = Number(process.env.COUNT ?? 0);
const intervalMs = Number(process.env.INTERVAL_MS ?? 2000);
const rate = Number(process.env.RATE ?? 0);
const durationS = Number(process.env.DURATION_S ?? 60);
const tokens = (process.env.TOKENS ?? '').split(',').filter(Boolean);
if (!url || rooms.length === 0) throw new Error('URL and ROOMS are required');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const endAt = Date.now() + durationS * 1000;

interface PollReport {
  polls: number;
  errors: number;
  status: Record<string, number>;
  messages: number;
  duplicates: number;
  latencyMsP99: number;
}

async function pollers(): Promise<PollReport> {
  const report: PollReport = { polls: 0, errors: 0, status: {}, messages: 0, duplicates: 0, latencyMsP99: 0 };
  const took: number[] = [];
  async function one(i: number): Promise<void> {
    const room = rooms[i % rooms.length] as string;
    let cursor = '';
    // Every poller its own copy of the ids it saw: a duplicate is an id one poller got twice.
    const seen = new Set<string>();
    await sleep(Math.random() * intervalMs);
    while (Date.now() < endAt) {
      const started = Date.now();
      try {
        const res = await fetch(`${url}/v1/rooms/${encodeURIComponent(room)}/messages${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, { signal: AbortSignal.timeout(5000) });
        report.polls++;
        report.status[res.status] = (report.status[res.status] ?? 0) + 1;
        if (res.status === 200) {
          const body = (await res.json()) as { messages: { id: string }[]; cursor: string };
          cursor = body.cursor;
          for (const m of body.messages) {
            if (seen.has(m.id)) report.duplicates++;
            else seen.add(m.id);
          }
          report.messages += body.messages.length;
        } else await res.arrayBuffer();
        took.push(Date.now() - started);
      } catch {
        report.errors++;
      }
      await sleep(Math.max(0, intervalMs * (0.9 + Math.random() * 0.2) - (Date.now() - started)));
    }
  }
  await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
  took.sort((a, b) => a - b);
  report.latencyMsP99 = took[Math.floor(took.length * 0.99)] ?? 0;
  return report;
}

interface SendReport {
  attempted: number;
  accepted: Record<string, number>;
  status: Record<string, number>;
  errors: number;
}

async function sender(): Promise<SendReport> {
  const report: SendReport = { attempted: 0, accepted: {}, status: {}, errors: 0 };
  const start = Date.now();
  const total = Math.floor(rate * durationS);
  const inFlight = new Set<Promise<void>>();
  const agent = httpAgent(url);
  let i = 0;
  while (i < total && Date.now() < endAt) {
    const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * rate));
    while (i < due && inFlight.size < 64) {
      const n = i++;
      const room = rooms[n % rooms.length] as string;
      const token = tokens[n % tokens.length] as string;
      report.attempted++;
      const p: Promise<void> = sendComment(url, agent, room, token, `b ${Date.now()} ${n}`)
        .then((r) => {
          if (r.status === 0) {
            report.errors++;
            return;
          }
          report.status[r.status] = (report.status[r.status] ?? 0) + 1;
          if (r.status === 202) report.accepted[room] = (report.accepted[room] ?? 0) + 1;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(2);
  }
  await Promise.all(inFlight);
  return report;
}

const result = kind === 'pollers' ? await pollers() : await sender();
process.stdout.write(`done ${JSON.stringify(result)}\n`);
process.exit(0);
