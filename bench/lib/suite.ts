/**
 * The suite's table (bench/all.ts): one row per performance target, read from each bench's JSON
 * (bench/results/NAME-latest.json). Tolerant of missing benches and fields: a figure that is not
 * there is "n/a" and its target neither met nor missed; a missing nothing-lost figure fails its check.
 */
type Json = Record<string, unknown>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Json | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v.filter((x) => obj(x)) as Json[]) : []);
const get = (v: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), v);
const fmt = (n: number | null, digits = 0, unit = ''): string => (n === null ? 'n/a' : `${n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })}${unit}`);
const pct = (r: number | null): string => (r === null ? 'n/a' : `${Math.round(r * 100)} %`);
const times = (r: number | null, digits = 1): string => (r === null ? 'n/a' : `${r.toFixed(digits)}x`);
const div = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

export interface Row {
  row: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  /** true met, false not met, null: no target or no data. */
  met: boolean | null;
  now: string;
  values: Json;
}

export interface Check {
  check: string;
  value: string;
  ok: boolean;
}

const byName = (runs: Json[], pattern: RegExp): Json | null => runs.find((r) => pattern.test(String(r.name ?? ''))) ?? null;
const sys = (fanout: Json | null, system: string): Json | null => arr(fanout?.results).find((r) => r.system === system) ?? null;

export function buildRows(results: Record<string, Json | null>): { rows: Row[]; checks: Check[] } {
  const rows: Row[] = [];
  const checks: Check[] = [];
  const add = (r: Omit<Row, 'met'> & { met?: boolean | null }) => rows.push({ met: null, ...r });

  // send, saturated
  const send = results.send ?? null;
  const sendRuns = arr(send?.results);
  const echo = byName(sendRuns, /echo|baseline/i) ?? sendRuns[0] ?? null;
  const sent = byName(sendRuns, /send/i) ?? sendRuns[1] ?? null;
  const sendRatio = div(num(sent?.reqPerSec), num(echo?.reqPerSec));
  add({
    row: 'send, saturated: ours / Fastify JSON echo',
    ours: `${fmt(num(sent?.reqPerSec))} msg/s, ${fmt(num(sent?.serverCpuUsPerReq))} us CPU/msg`,
    baseline: `${fmt(num(echo?.reqPerSec))} req/s, ${fmt(num(echo?.serverCpuUsPerReq))} us CPU/req`,
    ratio: pct(sendRatio),
    target: '>= 50 %',
    met: sendRatio === null ? null : sendRatio >= 0.5,
    now: '17 % (235 us CPU/msg)',
    values: { sendPerS: num(sent?.reqPerSec), echoPerS: num(echo?.reqPerSec), sendCpuUs: num(sent?.serverCpuUsPerReq), echoCpuUs: num(echo?.serverCpuUsPerReq), ratio: sendRatio },
  });
  const accepted = num(get(send, 'summary', 'accepted'));
  const stored = num(get(send, 'summary', 'stored'));
  checks.push({ check: 'send bench: accepted = stored', value: `${fmt(accepted)} accepted, ${fmt(stored)} stored`, ok: accepted !== null && stored !== null && stored >= accepted });
  const sentKafka = byName(sendRuns, /over Kafka/i);
  if (sentKafka) {
    const kafkaRatio = div(num(sentKafka.reqPerSec), num(echo?.reqPerSec));
    add({
      row: 'send, saturated, over a Kafka broker: ours / Fastify JSON echo',
      ours: `${fmt(num(sentKafka.reqPerSec))} msg/s, ${fmt(num(sentKafka.serverCpuUsPerReq))} us CPU/msg (the broker's JVM included)`,
      baseline: `${fmt(num(echo?.reqPerSec))} req/s, ${fmt(num(echo?.serverCpuUsPerReq))} us CPU/req`,
      ratio: pct(kafkaRatio),
      target: '>= 50 %',
      met: kafkaRatio === null ? null : kafkaRatio >= 0.5,
      now: 'not measured before (the mock broker)',
      values: { sendPerS: num(sentKafka.reqPerSec), cpuUs: num(sentKafka.serverCpuUsPerReq), ratio: kafkaRatio },
    });
    const acceptedK = num(get(send, 'summary', 'kafka', 'accepted'));
    const storedK = num(get(send, 'summary', 'kafka', 'stored'));
    checks.push({ check: 'send bench over Kafka: accepted = stored', value: `${fmt(acceptedK)} accepted, ${fmt(storedK)} stored`, ok: acceptedK !== null && storedK !== null && storedK >= acceptedK });
  }

  // send at 200 msg/s, from the fan-out run's per-process CPU: every process but the connector and Redis.
  const fanout = results.fanout ?? null;
  const ours = sys(fanout, 'ours');
  const bili = sys(fanout, 'bili');
  const oursKafka = sys(fanout, 'ours-kafka');
  const plain = sys(fanout, 'baseline');
  const pipelineCpu = Object.entries(obj(ours?.cpuByProcess) ?? {})
    .filter(([name]) => !/connector|redis/i.test(name))
    .reduce<number | null>((n, [, v]) => (num(v) === null ? n : (n ?? 0) + (v as number)), null);
  const sentAt200 = num(ours?.sent);
  const perMsgUs = pipelineCpu === null || !sentAt200 ? null : (pipelineCpu / sentAt200) * 1e6;
  add({
    row: `send at ${fmt(num(fanout?.rate))} msg/s: server CPU per message (front + processor + pusher)`,
    ours: `${fmt(perMsgUs)} us/msg (${fmt(pipelineCpu, 2)} CPU s / ${fmt(sentAt200)} msgs)`,
    baseline: '-',
    ratio: '-',
    target: '<= 300 us',
    met: perMsgUs === null ? null : perMsgUs <= 300,
    now: 'about 1.9 ms',
    values: { cpuSeconds: pipelineCpu, sent: sentAt200, usPerMessage: perMsgUs },
  });

  // the same cost without the fan-out, from the send-low bench (one message at a time).
  // Its baseline: the same posts at the same pace to a Fastify echo (what one request that
  // arrives alone costs this machine), and to an echo after one Redis round trip.
  const low = obj(results['send-low']?.summary);
  if (low) {
    const us = num(low.serverUsPerMessage);
    const echoUs = num(low.echoUsPerRequest);
    const echoRedisUs = num(low.echoRedisUsPerRequest);
    add({
      row: `send one at a time (send-low, ${fmt(num(low.ratePerS))} msg/s): server CPU per message`,
      ours: `${fmt(us)} us/msg (+ Redis ${fmt(num(low.redisUsPerMessage))} us, ${fmt(num(low.redisCommandsPerMessage), 1)} commands)`,
      baseline: echoUs === null ? '-' : `Fastify echo at the same pace ${fmt(echoUs)} us/req (after one Redis trip ${fmt(echoRedisUs)} us)`,
      ratio: echoUs === null ? '-' : times(div(us, echoUs)),
      target: '<= 300 us',
      met: us === null ? null : us <= 300,
      now: 'about 1.9 ms',
      values: low,
    });
    const k = obj(low.kafka);
    if (k) {
      const total = num(k.totalUsPerMessage);
      add({
        row: `send one at a time over a Kafka broker (send-low, ${fmt(num(low.ratePerS))} msg/s): server + broker JVM CPU per message`,
        ours: `${fmt(total)} us/msg (server ${fmt(num(k.serverUsPerMessage))} + JVM ${fmt(num(k.brokerUsPerMessage))} us)`,
        baseline: echoUs === null ? '-' : `Fastify echo at the same pace ${fmt(echoUs)} us/req`,
        ratio: echoUs === null ? '-' : times(div(total, echoUs)),
        target: '<= 2x echo',
        met: total === null || echoUs === null ? null : total <= 2 * echoUs,
        now: '3.4x (in-memory bus)',
        values: k,
      });
    }
  }

  // polls: server CPU per request, Redis's share included (what a poll really costs the system).
  const poll = results.poll ?? null;
  const pollRuns = arr(poll?.results);
  const hello = byName(pollRuns, /hello|baseline/i) ?? pollRuns[0] ?? null;
  const cached = byName(pollRuns, /cache/i) ?? pollRuns[1] ?? null;
  const uncached = byName(pollRuns, /small|uncached|\(Redis\)/i) ?? pollRuns[2] ?? null;
  const cost = (r: Json | null): number | null => (num(r?.serverCpuUsPerReq) === null ? null : (num(r?.serverCpuUsPerReq) as number) + (num(r?.redisCpuUsPerReq) ?? 0));
  const cachedVsHello = div(cost(hello), cost(cached));
  const cachedVsUncached = div(cost(uncached), cost(cached));
  const pollDesc = (r: Json | null) => `${fmt(num(r?.reqPerSec))} req/s, ${fmt(cost(r))} us CPU/req`;
  add({
    row: 'cached poll / hello-world (CPU per request)',
    ours: pollDesc(cached),
    baseline: pollDesc(hello),
    ratio: pct(cachedVsHello),
    target: '>= 80 %',
    met: cachedVsHello === null ? null : cachedVsHello >= 0.8,
    now: '65 % (55 vs 34 us)',
    values: { cachedUs: cost(cached), helloUs: cost(hello), ratio: cachedVsHello, byReqPerS: div(num(cached?.reqPerSec), num(hello?.reqPerSec)) },
  });
  // The same bytes from a bare Fastify route: what is left once the answer's size is paid for.
  const same = byName(pollRuns, /static|same bytes/i);
  const staticUs = cost(same) ?? num(get(poll, 'summary', 'staticCpuUs'));
  const cachedVsStatic = div(staticUs, cost(cached));
  if (staticUs !== null) {
    add({
      row: 'cached poll / Fastify serving the same bytes (CPU per request)',
      ours: pollDesc(cached),
      baseline: same ? pollDesc(same) : `${fmt(num(get(poll, 'summary', 'staticPerS')))} req/s, ${fmt(staticUs)} us CPU/req`,
      ratio: pct(cachedVsStatic),
      target: '-',
      now: '-',
      values: { cachedUs: cost(cached), staticUs, ratio: cachedVsStatic },
    });
  }
  add({
    row: 'cached / uncached poll (CPU per request, Redis included)',
    ours: pollDesc(cached),
    baseline: pollDesc(uncached),
    ratio: times(cachedVsUncached),
    target: '>= 4x',
    met: cachedVsUncached === null ? null : cachedVsUncached >= 4,
    now: '2.7x',
    values: { cachedUs: cost(cached), uncachedUs: cost(uncached), ratio: cachedVsUncached, byReqPerS: div(num(cached?.reqPerSec), num(uncached?.reqPerSec)) },
  });

  // fan-out
  const perCpu = (r: Json | null) => num(r?.deliveriesPerServerCpuSecond);
  const p99 = (r: Json | null) => num(get(r, 'latencyMs', 'p99'));
  const fanDesc = (r: Json | null) => `${fmt(perCpu(r))}/CPU-s, p99 ${fmt(p99(r))} ms`;
  for (const [label, r] of [
    ['socket.io', ours],
    ['Bilibili protocol', bili],
    ['socket.io, over a Kafka broker, its JVM counted', oursKafka],
  ] as const) {
    if (!r && label.includes('Kafka')) continue;
    add({
      row: `fan-out, deliveries per server CPU-second (${label})`,
      ours: fanDesc(r),
      baseline: `plain socket.io ${fanDesc(plain)}`,
      ratio: times(div(perCpu(r), perCpu(plain))),
      target: '>= 2,000,000 at p99 <= 300 ms',
      met: perCpu(r) === null || p99(r) === null ? null : (perCpu(r) as number) >= 2_000_000 && (p99(r) as number) <= 300,
      now: label === 'socket.io' ? '608k' : '-',
      values: { perCpuSecond: perCpu(r), p99: p99(r), baselinePerCpuSecond: perCpu(plain) },
    });
  }
  const fanRatio = div(perCpu(ours), perCpu(plain));
  add({
    row: 'fan-out, ours / plain socket.io per server CPU-second',
    ours: fmt(perCpu(ours)),
    baseline: fmt(perCpu(plain)),
    ratio: times(fanRatio),
    target: '>= 15x',
    met: fanRatio === null ? null : fanRatio >= 15,
    now: '11x',
    values: { ratio: fanRatio },
  });
  for (const [label, r] of [
    ['ours (socket.io)', ours],
    ['ours (Bilibili)', bili],
    ['ours over Kafka (socket.io)', oursKafka],
    ['plain socket.io', plain],
  ] as const) {
    if (!r) continue;
    checks.push({ check: `fan-out ${label}: lost = 0, duplicated = 0`, value: `lost ${fmt(num(r.lost))}, duplicated ${fmt(num(r.duplicates))}`, ok: num(r.lost) === 0 && num(r.duplicates) === 0 });
  }
  if (!ours) checks.push({ check: 'fan-out: lost = 0, duplicated = 0', value: 'n/a (no result)', ok: false });

  // idle connections: KB per connection (connector RSS delta / connections), RSS after they closed.
  const conn = results.connections ?? null;
  const connRuns = arr(conn?.results);
  for (const [label, pattern, target] of [
    ['socket.io', /^(ours|socket\.?io)$/i, 8],
    ['Bilibili over WebSocket', /^(bili|bilibili)$/i, 4],
    ['Bilibili over TCP', /^bili-?tcp$/i, 4],
  ] as const) {
    const r = connRuns.find((x) => pattern.test(String(x.system ?? x.transport ?? ''))) ?? null;
    if (!r && label.endsWith('TCP')) continue;
    const bytes = num(r?.bytesPerConnection) ?? (num(r?.kbPerConnection) === null ? null : (num(r?.kbPerConnection) as number) * 1024);
    const kb = bytes === null ? null : bytes / 1024;
    const before = num(r?.rssBeforeBytes);
    // Whatever the connections bench calls it: a byte count measured after the clients closed.
    const closedKey = Object.keys(r ?? {}).find((k) => /close/i.test(k) && /bytes/i.test(k) && num(r?.[k]) !== null);
    const closed = closedKey ? num(r?.[closedKey]) : null;
    const after = num(r?.rssAfterBytes);
    const backNearStart = closed === null || before === null || after === null ? null : closed - before <= Math.max(20 * 1048576, 0.2 * (after - before));
    const mb = (n: number | null) => (n === null ? 'n/a' : `${Math.round(n / 1048576)} MB`);
    add({
      row: `idle connection memory, ${label} (${fmt(num(r?.joined ?? r?.clients))} connections)`,
      ours: `${fmt(kb, 1)} KB/conn, ${fmt(num(r?.connectionsPerSecond))} conn/s; RSS ${mb(before)} -> ${mb(after)}, after close ${mb(closed)}`,
      baseline: '-',
      ratio: '-',
      target: `<= ${target} KB, back near the start after close`,
      met: kb === null ? null : kb <= target && backNearStart !== false,
      now: label === 'socket.io' ? '14.9-22 KB; +200 MB after close' : '-',
      values: { kbPerConnection: kb, connectionsPerSecond: num(r?.connectionsPerSecond), rssBeforeBytes: before, rssAfterBytes: after, rssAfterCloseBytes: closed, backNearStart },
    });
  }

  // replay tiers, against the hot tier.
  const replayRuns = arr(results.replay?.runs);
  const hot = byName(replayRuns, /hot/i);
  for (const [label, pattern] of [
    ['hot (local cache)', /hot/i],
    ['warm (replay Redis)', /warm/i],
    ['cold (MySQL)', /cold/i],
  ] as const) {
    const r = byName(replayRuns, pattern);
    add({
      row: `replay, ${label}`,
      ours: `${fmt(num(r?.reqPerSec))} req/s, p99 ${fmt(num(get(r, 'latencyMs', 'p99')))} ms`,
      baseline: label.startsWith('hot') ? '-' : `hot ${fmt(num(hot?.reqPerSec))} req/s`,
      ratio: label.startsWith('hot') ? '-' : pct(div(num(r?.reqPerSec), num(hot?.reqPerSec))),
      target: '-',
      now: '-',
      values: { reqPerSec: num(r?.reqPerSec), p99: num(get(r, 'latencyMs', 'p99')) },
    });
  }

  // the live show
  const live = obj(results['live-show']?.summary);
  const cpu = obj(live?.cpu) ?? {};
  const topRoles = Object.entries(cpu)
    .map(([name, c]) => [name, num(get(c, 'percentOfCore'))] as const)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .slice(0, 3)
    .map(([name, p]) => `${name} ${fmt(p)} %`)
    .join(', ');
  add({
    row: `live show (${fmt(num(get(live, 'viewers', 'joined')))} viewers in one room, ${fmt(num(live?.rooms))} small rooms, ${fmt(num(live?.seconds))} s)`,
    ours:
      `${fmt(num(live?.deliveriesPerSecond))} deliveries/s, e2e p50/p99 ${fmt(num(get(live, 'latencyMs', 'all', 'p50')))}/${fmt(num(get(live, 'latencyMs', 'all', 'p99')))} ms, ` +
      `${fmt(num(get(live, 'polls', 'perSecond')))} polls/s, servers ${fmt(num(live?.serverCpuSeconds), 1)} CPU s (top: ${topRoles || 'n/a'})`,
    baseline: '-',
    ratio: '-',
    target: 'p99 <= 300 ms, nothing lost',
    met: live ? num(get(live, 'latencyMs', 'all', 'p99')) !== null && (num(get(live, 'latencyMs', 'all', 'p99')) as number) <= 300 && live.lost === 0 && live.duplicated === 0 : null,
    now: '-',
    values: live ?? {},
  });
  checks.push({
    check: 'live show, huge room: lost = 0, duplicated = 0; every accepted send stored',
    value: live ? `lost ${fmt(num(live.lost))}, duplicated ${fmt(num(live.duplicated))}, sends missing ${fmt(num(live.lostSends))}` : 'n/a (no result)',
    ok: Boolean(live) && live?.lost === 0 && live?.duplicated === 0 && live?.lostSends === 0,
  });
  // the production topologies on real Kafka brokers
  for (const t of arr(results.topologies?.results)) {
    const name = String(t.topology);
    const spread = obj(t.spread);
    const hot = obj(t.hotRoom);
    const wire = (p: Json | null, w: string, f: string): number | null => num(get(p, 'wires', w, f));
    const sioP99 = wire(spread, 'socketio', 'p99Ms');
    const biliP99 = wire(spread, 'bilibili', 'p99Ms');
    const hotP99 = wire(hot, 'socketio', 'p99Ms');
    add({
      row: `${name} topology on Kafka: 50 comments/s over 10 rooms`,
      ours: `socket.io p50/p99 ${fmt(wire(spread, 'socketio', 'p50Ms'))}/${fmt(sioP99)} ms, Bilibili TCP ${fmt(wire(spread, 'bilibili', 'p50Ms'))}/${fmt(biliP99)} ms, ${fmt(num(get(spread, 'cpuMsPerMessage', 'total')), 2)} ms CPU/msg`,
      baseline: '-',
      ratio: '-',
      target: 'p99 <= 300 ms on both wires',
      met: sioP99 === null || biliP99 === null ? null : sioP99 <= 300 && biliP99 <= 300,
      now: name === 'split' ? 'p99 2,276-2,604 ms (mock broker)' : 'did not start',
      values: spread ?? {},
    });
    add({
      row: `${name} topology on Kafka: one hot room, 500 comments/s open-loop for 8 s`,
      ours: `socket.io p50/p99 ${fmt(wire(hot, 'socketio', 'p50Ms'))}/${fmt(hotP99)} ms, poller lost ${fmt(wire(hot, 'poll', 'lost'))}`,
      baseline: '-',
      ratio: '-',
      target: 'socket.io p99 <= 500 ms, poller loses nothing',
      met: hotP99 === null ? null : hotP99 <= 500 && wire(hot, 'poll', 'lost') === 0,
      now: name === 'split' ? 'p99 6.3-12 s at 400/s (mock broker)' : 'did not start',
      values: hot ?? {},
    });
    checks.push({
      check: `${name} topology: every acknowledged comment reached every socket.io, Bilibili and poll reader (50/s), and every socket.io and poll reader (hot room)`,
      value: `lost ${['socketio', 'bilibili', 'poll'].map((w) => fmt(wire(spread, w, 'lost'))).join('/')}, hot room ${['socketio', 'poll'].map((w) => fmt(wire(hot, w, 'lost'))).join('/')}`,
      ok: ['socketio', 'bilibili', 'poll'].every((w) => wire(spread, w, 'lost') === 0) && ['socketio', 'poll'].every((w) => wire(hot, w, 'lost') === 0),
    });
  }
  return { rows, checks };
}

export function printTable(header: string[], lines: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const l of lines) process.stdout.write(`${line(l)}\n`);
}

