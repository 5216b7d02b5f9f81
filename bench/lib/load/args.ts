import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ROOM_ID_PATTERN } from '@danmaku/protocol';
import { TRANSPORTS, type Transport } from './clients.js';

export const HELP = `npm run load -- --target URL [options]

Drives a running deployment (any URL; it never starts a server) with viewers on every wire and
senders posting comments, then writes DIR/report.json and DIR/report.html.

  --target URL            the deployment's public HTTP address (a front), e.g. http://127.0.0.1:8080
  --rooms N               rooms P0 .. P(N-1) (default 10)
  --room-prefix P         room id prefix P (default "load")
  --viewers N             viewers in all (default 100), spread over the transports in turn
  --transports LIST       any of poll,socketio,bilibili-ws,bilibili-tcp (default all four)
  --huge-room-share F     room P0 gets this share (0..1) of the viewers, the others a Zipf spread
                          (room Pi's share ~ 1/i); without it viewers spread evenly
  --rate N                comments per second in all (default 10), round robin over the rooms
  --senders N             users posting them (default rate/2: each is one user, and the
                          deployment's default per-user limit is 20 per 10 s)
  --seconds S             how long the senders send (default 30)
  --ramp-seconds S        viewers connect evenly over S seconds before sending starts (default 0)
  --drain-seconds S       after the last send, how long to wait for deliveries (default 10)
  --jwt-secret SECRET     mint the tokens (senders; viewers too; an admin token for aliases)
  --token-file FILE       tokens, one per line, used in turn by senders and viewers
                          (neither: development tokens from POST /v1/dev/token; viewers anonymous)
  --anonymous-viewers     socket.io and Bilibili viewers without a token even when there are
                          tokens (by default each is a user: socket.io auth, Bilibili auth key)
  --workers N             client processes (default: the number of cores)
  --source-addresses N    local target: spread connections over 127.0.0.1 .. 127.0.0.N (default 16)
  --bili-protover V       3 brotli, 2 zlib, 0 plain (default 3)
  --max-p99-ms LIST       exit 1 when a transport's delivery p99 is above its limit: MS for every
                          transport, NAME=MS for one, or both (300,poll=6000). A poller's
                          latency includes the interval the server gives it (retryAfterMs,
                          seconds in a big room), so it wants a limit of its own
  --max-lost N            exit 1 when more than N deliveries were lost in all
  --no-stored-check       do not read the rooms back at the end (by default every room is
                          read from its first message: an acknowledged message missing there
                          fails the run)
  --out DIR               where the report goes (default .run/load/TIMESTAMP)
  --help                  this text

A viewer counts a message as expected when the message was sent after the viewer was ready
(joined, authenticated, or first poll answered) and the deployment acknowledged it (202).
lost = expected - delivered; duplicated = the same message twice to one viewer. Latency is
receive time - the message's server ts (p50/p90/p99 per transport); sendToDelivery* fields use
the sender's clock instead. Exit status: 0 ok, 1 a threshold missed, 2 bad arguments,
3 the deployment could not be set up (unreachable, no tokens, no connectors), 130 stopped by
Ctrl-C (the report is still written; a second Ctrl-C leaves at once).`;

export interface LoadOptions {
  target: string;
  rooms: number;
  roomPrefix: string;
  viewers: number;
  transports: Transport[];
  hugeRoomShare: number | null;
  senders: number;
  rate: number;
  seconds: number;
  rampSeconds: number;
  drainSeconds: number;
  jwtSecret: string | null;
  tokenFile: string | null;
  workers: number;
  sourceAddresses: number;
  biliProtover: number;
  /** Every transport's p99 limit (ms), unless it has its own in maxP99MsByTransport. */
  maxP99Ms: number | null;
  maxP99MsByTransport: Partial<Record<Transport, number>>;
  maxLost: number | null;
  storedCheck: boolean;
  anonymousViewers: boolean;
  out: string;
}

export class UsageError extends Error {}

function number(name: string, text: string | undefined, fallback: number | null, check: { min: number; max?: number; integer?: boolean }): number | null {
  if (text === undefined) return fallback;
  const value = Number(text);
  const kind = check.integer ? 'a whole number' : 'a number';
  const range = check.max === undefined ? `>= ${check.min}` : `from ${check.min} to ${check.max}`;
  if (text.trim() === '' || !Number.isFinite(value) || (check.integer && !Number.isInteger(value)) || value < check.min || (check.max !== undefined && value > check.max)) {
    throw new UsageError(`--${name} must be ${kind} ${range} (got "${text}")`);
  }
  return value;
}

const need = (name: string, value: number | null): number => {
  if (value === null) throw new UsageError(`--${name} is required`);
  return value;
};

/** `--max-p99-ms`: "MS", "NAME=MS" or both, comma-separated. */
function p99Limits(text: string | undefined): { all: number | null; byTransport: Partial<Record<Transport, number>> } {
  const byTransport: Partial<Record<Transport, number>> = {};
  let all: number | null = null;
  if (text === undefined) return { all, byTransport };
  for (const part of text.split(',').map((p) => p.trim())) {
    const [name, value] = part.includes('=') ? (part.split('=', 2) as [string, string]) : [null, part];
    const ms = number('max-p99-ms', value, null, { min: 0 });
    if (ms === null) continue;
    if (name === null) all = ms;
    else if ((TRANSPORTS as readonly string[]).includes(name)) byTransport[name as Transport] = ms;
    else throw new UsageError(`--max-p99-ms: unknown transport "${name}" (known: ${TRANSPORTS.join(', ')})`);
  }
  return { all, byTransport };
}

/** Parses and checks the command line; throws UsageError with a sentence for the user. */
export function parseLoadArgs(argv: string[]): LoadOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    const str = { type: 'string' } as const;
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        target: str, rooms: str, 'room-prefix': str, viewers: str, transports: str, 'huge-room-share': str, senders: str, rate: str,
        seconds: str, 'ramp-seconds': str, 'drain-seconds': str, 'jwt-secret': str, 'token-file': str, workers: str,
        'source-addresses': str, 'bili-protover': str, 'max-p99-ms': str, 'max-lost': str, out: str, 'no-stored-check': { type: 'boolean' }, 'anonymous-viewers': { type: 'boolean' }, help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const s = (name: string): string | undefined => values[name] as string | undefined;

  const targetText = s('target');
  if (!targetText) throw new UsageError('--target is required (the deployment, e.g. --target http://127.0.0.1:8080)');
  let target: URL;
  try {
    target = new URL(targetText);
  } catch {
    throw new UsageError(`--target must be an http(s) URL (got "${targetText}")`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new UsageError(`--target must be an http(s) URL (got "${targetText}")`);

  const rooms = need('rooms', number('rooms', s('rooms'), 10, { min: 1, max: 1_000_000, integer: true }));
  const roomPrefix = s('room-prefix') ?? 'load';
  const pattern = new RegExp(ROOM_ID_PATTERN);
  if (!pattern.test(`${roomPrefix}${rooms - 1}`)) throw new UsageError(`--room-prefix "${roomPrefix}" makes room ids the API refuses: ids are 1..64 of A-Z a-z 0-9 _ -`);

  const transports = (s('transports') ?? TRANSPORTS.join(',')).split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of transports) if (!(TRANSPORTS as readonly string[]).includes(t)) throw new UsageError(`--transports: unknown transport "${t}" (known: ${TRANSPORTS.join(', ')})`);
  if (transports.length === 0) throw new UsageError('--transports must name at least one transport');

  const jwtSecret = s('jwt-secret') ?? null;
  const tokenFile = s('token-file') ?? null;
  if (jwtSecret !== null && tokenFile !== null) throw new UsageError('--jwt-secret and --token-file exclude each other');
  if (jwtSecret === '') throw new UsageError('--jwt-secret must not be empty');

  const biliProtover = need('bili-protover', number('bili-protover', s('bili-protover'), 3, { min: 0, max: 3, integer: true }));
  if (biliProtover === 1) throw new UsageError('--bili-protover must be 0, 2 or 3');
  const hugeRoomShare = number('huge-room-share', s('huge-room-share'), null, { min: 0, max: 1 });
  if (hugeRoomShare !== null && rooms < 2 && hugeRoomShare < 1) throw new UsageError('--huge-room-share needs --rooms of 2 or more');

  const rate = need('rate', number('rate', s('rate'), 10, { min: 0.01, max: 1_000_000 }));
  const p99 = p99Limits(s('max-p99-ms'));
  return {
    target: target.href.replace(/\/+$/, ''),
    rooms,
    roomPrefix,
    viewers: need('viewers', number('viewers', s('viewers'), 100, { min: 0, integer: true })),
    transports: [...new Set(transports)] as Transport[],
    hugeRoomShare,
    rate,
    senders: need('senders', number('senders', s('senders'), Math.max(1, Math.min(10_000, Math.ceil(rate / 2))), { min: 1, max: 10_000, integer: true })),
    seconds: need('seconds', number('seconds', s('seconds'), 30, { min: 1, max: 86_400 })),
    rampSeconds: need('ramp-seconds', number('ramp-seconds', s('ramp-seconds'), 0, { min: 0, max: 86_400 })),
    drainSeconds: need('drain-seconds', number('drain-seconds', s('drain-seconds'), 10, { min: 0, max: 3600 })),
    jwtSecret,
    tokenFile,
    workers: need('workers', number('workers', s('workers'), availableParallelism(), { min: 1, max: 512, integer: true })),
    sourceAddresses: need('source-addresses', number('source-addresses', s('source-addresses'), 16, { min: 1, max: 254, integer: true })),
    biliProtover,
    maxP99Ms: p99.all,
    maxP99MsByTransport: p99.byTransport,
    maxLost: number('max-lost', s('max-lost'), null, { min: 0, integer: true }),
    storedCheck: values['no-stored-check'] !== true,
    anonymousViewers: values['anonymous-viewers'] === true,
    out: s('out') ?? `.run/load/${new Date().toISOString().replace(/[:.]/g, '-')}`,
  };
}
