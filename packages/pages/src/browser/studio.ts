/**
 * The streamer studio (`/studio/:roomId`, `/studio?room=ID`): start and end the live, the room's
 * recent messages with delete / mute / ban, slow mode, the pinned notice and room stats; the
 * live's video link (at start or later) and, once it ended, its recording's.
 * Messages come through the client SDK, as on the viewer page; the tools are the moderation API
 * with the streamer's token, and every refusal is shown as the API's own message.
 */
import { createClient, type DanmakuClient, type Message } from '@danmaku/client';
import { roomCharts } from './charts.js';
import { api, byId, claimsOf, describe, idFromLocation } from './common.js';
import { describeImport, importDanmakuFile } from './danmaku-import.js';
import { giftLabel } from './stage.js';

const TOKEN_KEY = 'danmaku.studioToken';
const STATS_EVERY_MS = 3000;
const MAX_MESSAGES = 100;
const roomId = idFromLocation('studio', 'room') ?? 'demo';
const roomPath = `/v1/rooms/${encodeURIComponent(roomId)}`;

interface Live {
  liveId: string;
  startedAt: number;
}

interface Stats {
  online: number;
  likes: number;
  messagesPerSecond: number;
  gear: number;
  types: Record<string, { total: number; perSecond: number; gear: number }>;
  slowModeSec: number;
  pinned: { content: string; ts: number } | null;
  muted: number;
  banned: number;
}

let token = localStorage.getItem(TOKEN_KEY) ?? '';
let live: Live | null = null;
const chartStats = roomCharts(byId('stats'), roomId);
let client: DanmakuClient | null = null;
const rows = new Map<string, HTMLLIElement>();

function say(text: string, isError = false): void {
  const status = byId('studio-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

/** Runs a tool call; the API's error message is what the streamer sees when it refuses. */
async function act(action: () => Promise<string>): Promise<void> {
  try {
    say(await action());
  } catch (err) {
    say(describe(err), true);
  }
}

function button(label: string, title: string, onClick: () => Promise<string>): HTMLButtonElement {
  const el = document.createElement('button');
  el.type = 'button';
  el.textContent = label;
  el.title = title;
  el.addEventListener('click', () => void act(onClick));
  return el;
}

function span(className: string, text: string): HTMLSpanElement {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

function removeRows(ids: string[]): void {
  for (const id of ids) {
    rows.get(id)?.remove();
    rows.delete(id);
  }
  byId('message-count').textContent = `(${rows.size})`;
}

function messageText(m: Message): string {
  if (m.type === 'gift' && m.gift) return `sent ${giftLabel(m.gift.giftId)} × ${m.gift.count}`;
  return m.type === 'system' ? `Notice: ${m.content ?? ''}` : (m.content ?? '');
}

function messageRow(m: Message): HTMLLIElement {
  const item = document.createElement('li');
  item.className = m.type;
  item.dataset.id = m.id;
  item.dataset.user = m.user.id;
  const time = span('muted', new Date(m.ts).toLocaleTimeString());
  const actions = document.createElement('span');
  actions.className = 'actions';
  actions.append(
    button('Delete', 'Delete this message for everyone', async () => {
      await api(`${roomPath}/messages/${encodeURIComponent(m.id)}?type=${m.type}`, { method: 'DELETE', token });
      removeRows([m.id]);
      return 'Message deleted.';
    }),
  );
  // Your own messages (the pinned notices) can be deleted, but muting or banning yourself makes no sense.
  if (m.user.id !== claimsOf(token)?.sub) {
    actions.append(
      button('Mute', 'Mute the author for the minutes above', async () => {
        const minutes = Math.max(1, Math.round(Number(byId<HTMLInputElement>('mute-minutes').value) || 10));
        await api(`${roomPath}/mutes`, { method: 'POST', token, body: { userId: m.user.id, durationSec: minutes * 60 } });
        return `${m.user.name} is muted for ${minutes} min.`;
      }),
      button('Ban', 'Ban the author from this room', async () => {
        await api(`${roomPath}/bans`, { method: 'POST', token, body: { userId: m.user.id } });
        return `${m.user.name} is banned from this room.`;
      }),
    );
  }
  item.append(time, span('who', m.user.name), span('text', messageText(m)), actions);
  return item;
}

function onMessages(messages: Message[]): void {
  const list = byId('messages');
  for (const m of messages) {
    if (rows.has(m.id)) continue;
    const item = messageRow(m);
    rows.set(m.id, item);
    list.prepend(item);
  }
  while (rows.size > MAX_MESSAGES) {
    const oldest = list.lastElementChild as HTMLLIElement | null;
    if (!oldest?.dataset.id) break;
    removeRows([oldest.dataset.id]);
  }
  byId('message-count').textContent = `(${rows.size})`;
}

async function connect(): Promise<void> {
  const old = client;
  client = null;
  await old?.stop();
  const claims = claimsOf(token);
  const next = createClient({
    baseUrl: location.origin,
    roomId,
    types: ['comment', 'gift', 'system'],
    ...(token ? { token } : {}),
    ...(claims ? { uid: claims.sub } : {}),
    version: 'studio-1',
    onMessages,
    onDeleted: removeRows,
    onError: (err) => say(describe(err), true),
  });
  client = next;
  await next.start();
}

/** Fills the video link field with the live's own link when the streamer is not typing there. */
async function showLinks(liveId: string): Promise<void> {
  const field = byId<HTMLInputElement>('playback-url');
  const record = await api<{ playbackUrl: string | null }>(`/v1/lives/${encodeURIComponent(liveId)}`).catch(() => null);
  if (record && document.activeElement !== field && live?.liveId === liveId) field.value = record.playbackUrl ?? '';
}

function showLive(next: Live | null): void {
  if (next && next.liveId !== live?.liveId) void showLinks(next.liveId);
  live = next;
  const badge = byId('live-status');
  badge.textContent = live ? 'LIVE' : 'offline';
  badge.classList.toggle('live', live !== null);
  byId('live-state').textContent = live ? `Live ${live.liveId} since ${new Date(live.startedAt).toLocaleTimeString()}.` : 'Not live.';
  byId<HTMLButtonElement>('start-live').disabled = live !== null;
  byId<HTMLButtonElement>('end-live').disabled = live === null;
}

function statRow(label: string, value: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const name = document.createElement('td');
  name.textContent = label;
  const cell = document.createElement('td');
  cell.className = 'num';
  cell.textContent = value;
  tr.append(name, cell);
  return tr;
}

function showStats(stats: Stats): void {
  const list = [
    statRow('online', String(stats.online)),
    statRow('likes', String(stats.likes)),
    statRow('messages per second', stats.messagesPerSecond.toFixed(1)),
    ...Object.entries(stats.types)
      .filter(([, t]) => t.total > 0)
      .map(([type, t]) => statRow(`${type} messages`, String(t.total))),
    statRow('gear', String(stats.gear)),
    statRow('slow mode', stats.slowModeSec ? `${stats.slowModeSec} s` : 'off'),
    statRow('muted / banned', `${stats.muted} / ${stats.banned}`),
  ];
  byId('stats').replaceChildren(...list);
  chartStats(stats);
  byId('stats-age').textContent = `(every ${STATS_EVERY_MS / 1000} s)`;
  byId('pinned').textContent = stats.pinned?.content ?? 'none';
  const slow = byId<HTMLInputElement>('slow-mode');
  if (document.activeElement !== slow) slow.value = String(stats.slowModeSec);
}

/** The live state is public; the stats need the streamer's token, and a refusal says why. */
async function refresh(): Promise<void> {
  // A refresh under way when the token changes answers for the old token: drop it.
  const asked = token;
  try {
    const { live: now } = await api<{ live: Live | null }>(roomPath);
    if (asked !== token) return;
    showLive(now);
    if (!asked) return;
    const stats = await api<Stats>(`${roomPath}/stats`, { token: asked });
    if (asked === token) showStats(stats);
  } catch (err) {
    if (asked === token) say(describe(err), true);
  }
}

async function useToken(next: string): Promise<void> {
  const claims = next ? claimsOf(next) : null;
  if (next && !claims) return say('That does not look like a token (three base64url parts).', true);
  token = next;
  localStorage.setItem(TOKEN_KEY, token);
  byId<HTMLTextAreaElement>('token').value = token;
  byId('who').textContent = claims ? `${claims.name} (${claims.role})` : '';
  say(token ? 'Token in use.' : 'Paste a streamer token for this room.');
  // Stats shown for the previous token are not this one's to see.
  byId('stats').replaceChildren();
  await connect();
  await refresh();
}

byId('room-name').textContent = roomId;
byId<HTMLAnchorElement>('viewer-link').href = `/rooms/${encodeURIComponent(roomId)}`;
byId<HTMLAnchorElement>('replay-link').href = `/replay?room=${encodeURIComponent(roomId)}`;
document.title = `Danmaku · studio · ${roomId}`;

byId('use-token').addEventListener('click', () => void useToken(byId<HTMLTextAreaElement>('token').value.trim()));
byId('dev-token').addEventListener('click', () => {
  api<{ token: string }>('/v1/dev/token', { method: 'POST', body: { name: 'streamer', role: 'streamer', rooms: [roomId] } })
    .then((answer) => useToken(answer.token))
    .catch((err: unknown) => say(`No dev token: ${describe(err)}. Paste a streamer token instead.`, true));
});
byId('start-live').addEventListener('click', () =>
  void act(async () => {
    const playbackUrl = linkIn('playback-url');
    const started = await api<Live>(`${roomPath}/lives`, { method: 'POST', token, body: playbackUrl ? { playbackUrl } : {} });
    showLive(started);
    return `Live ${started.liveId} started.`;
  }),
);
/** The link typed in a field: empty clears it (null). */
function linkIn(id: string): string | null {
  return byId<HTMLInputElement>(id).value.trim() || null;
}

byId('set-playback').addEventListener('click', () =>
  void act(async () => {
    if (!live) return 'Not live: the link is used when you start the live.';
    const playbackUrl = linkIn('playback-url');
    await api(`${roomPath}/lives/${encodeURIComponent(live.liveId)}`, { method: 'PATCH', token, body: { playbackUrl } });
    return playbackUrl ? `Viewers now watch ${playbackUrl}.` : 'Video link removed.';
  }),
);
byId('set-recording').addEventListener('click', () =>
  void act(async () => {
    const { lives } = await api<{ lives: { liveId: string; endedAt: number | null }[] }>(`${roomPath}/lives?limit=5`);
    const last = lives.find((l) => l.endedAt !== null);
    if (!last) return 'No ended live yet: a recording belongs to a live that ended.';
    const recordingUrl = linkIn('recording-url');
    await api(`${roomPath}/lives/${encodeURIComponent(last.liveId)}`, { method: 'PATCH', token, body: { recordingUrl } });
    return recordingUrl ? `Live ${last.liveId} replays with ${recordingUrl}.` : `Recording of live ${last.liveId} removed.`;
  }),
);
byId('import-danmaku').addEventListener('click', () =>
  void act(async () => {
    const file = byId<HTMLInputElement>('danmaku-file').files?.[0];
    if (!file) return 'Choose a danmaku file (Bilibili XML) first.';
    const target = live ?? (await api<{ lives: { liveId: string }[] }>(`${roomPath}/lives?limit=1`)).lives[0];
    if (!target) return 'No live yet: start one (or end it at once) to import danmaku into.';
    return describeImport(target.liveId, await importDanmakuFile(target.liveId, file, token));
  }),
);
byId('end-live').addEventListener('click', () =>
  void act(async () => {
    if (!live) return 'Not live.';
    const { liveId } = live;
    await api(`${roomPath}/lives/${encodeURIComponent(liveId)}/end`, { method: 'POST', token });
    showLive(null);
    return `Live ${liveId} ended.`;
  }),
);
byId('set-slow-mode').addEventListener('click', () =>
  void act(async () => {
    const seconds = Math.max(0, Math.round(Number(byId<HTMLInputElement>('slow-mode').value) || 0));
    await api(`${roomPath}/slow-mode`, { method: 'PUT', token, body: { seconds } });
    await refresh();
    return seconds ? `Slow mode: one message per ${seconds} s per viewer.` : 'Slow mode off.';
  }),
);
byId('pin-notice').addEventListener('click', () =>
  void act(async () => {
    const input = byId<HTMLInputElement>('notice');
    await api(`${roomPath}/notice`, { method: 'POST', token, body: { content: input.value.trim() } });
    input.value = '';
    await refresh();
    return 'Notice pinned.';
  }),
);
byId('unpin-notice').addEventListener('click', () =>
  void act(async () => {
    await api(`${roomPath}/notice`, { method: 'DELETE', token });
    await refresh();
    return 'Notice removed.';
  }),
);

if (token) void useToken(token);
else {
  say('Paste a streamer token for this room, or get a dev token.');
  void connect().then(refresh);
}
setInterval(() => void refresh(), STATS_EVERY_MS);
