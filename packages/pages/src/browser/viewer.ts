/**
 * The viewer page (`/`, `/rooms/:roomId`, `/?room=ID`): danmaku over the live's video (when its
 * streamer gave a playback link; an empty panel otherwise), send box, gifts, likes, online count
 * and viewers, and the comment density of the running live's last minutes. Messages come through the client SDK (route, long
 * connection or polls, dedup, order); everything a user typed is shown as text, never as HTML.
 */
import { createClient, type DanmakuClient, type Message } from '@danmaku/client';
import { api, byId, claimsOf, describe, idFromLocation, newClientMsgId, type Claims } from './common.js';
import { DensityCurve, fetchRecentDensity } from './density.js';
import { giftLabel, Stage } from './stage.js';
import { attachVideo, type Attached } from './video.js';

const TOKEN_KEY = 'danmaku.token';
const roomId = idFromLocation('rooms', 'room') ?? 'demo';
const roomPath = `/v1/rooms/${encodeURIComponent(roomId)}`;

interface RoomState {
  live: { liveId: string; startedAt: number } | null;
  online: number;
  likes: number;
}

const stage = new Stage(byId('stage'));
const status = byId('send-status');
let token = localStorage.getItem(TOKEN_KEY) ?? '';
let me: Claims | null = claimsOf(token);
let client: DanmakuClient | null = null;
let likes = 0;
const video = byId<HTMLVideoElement>('player');
let attached: Attached | null = null;
/** The live whose video link was read, and when: a link set later is picked up within VIDEO_RECHECK_MS. */
let videoOf: { liveId: string | null; at: number } = { liveId: null, at: 0 };
const VIDEO_RECHECK_MS = 15_000;
/** The density strip shows this much of the running live (all of it while it is younger). */
const DENSITY_WINDOW_MS = 10 * 60_000;
const DENSITY_EVERY_MS = 5000;
const densityCanvas = byId<HTMLCanvasElement>('density');
const densityCurve = new DensityCurve(densityCanvas, { windowMs: DENSITY_WINDOW_MS });
/** The live the strip follows (null: none, the strip is hidden); one density request at a time. */
let densityLive: RoomState['live'] = null;
let densityTimer: ReturnType<typeof setTimeout> | undefined;
let densityLoading = false;

function say(text: string, isError = false): void {
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function activity(text: string): void {
  const list = byId('activity');
  const item = document.createElement('li');
  item.textContent = text;
  list.prepend(item);
  while (list.childElementCount > 30) list.lastElementChild?.remove();
}

function setLikes(n: number): void {
  // Socket `room` packets may lag this front's not-yet-flushed likes; the total only grows.
  likes = Math.max(likes, n);
  byId('likes').textContent = String(likes);
}

function onMessages(messages: Message[]): void {
  stage.show(messages, me?.sub);
  for (const m of messages) {
    if (m.type === 'enter') activity(`${m.user.name} joined`);
    if (m.type === 'gift' && m.gift) activity(`${m.user.name} sent ${giftLabel(m.gift.giftId)} × ${m.gift.count}`);
    if (m.type === 'system' && m.content) activity(`Notice: ${m.content}`);
  }
}

async function connect(): Promise<void> {
  const old = client;
  client = null;
  await old?.stop();
  const next = createClient({
    baseUrl: location.origin,
    roomId,
    ...(token ? { token } : {}),
    ...(me ? { uid: me.sub } : {}),
    version: 'web-1',
    onMessages,
    onDeleted: (ids) => stage.remove(ids),
    onRoom: (info) => {
      byId('online').textContent = String(info.online);
      setLikes(info.likes);
    },
    onMode: (mode, reason) => {
      byId('mode').textContent = mode === 'long' ? 'live (socket)' : `polling (${reason})`;
    },
    onError: (err) => say(describe(err), true),
  });
  client = next;
  await next.start();
}

async function enter(): Promise<void> {
  if (!token) return;
  try {
    const { online } = await api<{ online: number }>(`${roomPath}/enter`, { method: 'POST', token });
    byId('online').textContent = String(online);
  } catch (err) {
    say(`Could not enter the room: ${describe(err)}`, true);
  }
}

function playVideo(url: string | null): void {
  if ((attached?.url ?? null) === url) return;
  attached?.detach();
  attached = null;
  video.hidden = url === null;
  byId('video').classList.toggle('has-video', url !== null);
  if (url === null) return;
  attached = attachVideo(video, url, (why) => say(`The live's video does not play (${why}).`, true));
  // Muted: browsers only autoplay muted video; the viewer unmutes with the controls.
  video.muted = true;
  void video.play().catch(() => undefined);
}

async function refreshVideo(live: RoomState['live']): Promise<void> {
  const liveId = live?.liveId ?? null;
  if (liveId === videoOf.liveId && Date.now() - videoOf.at < VIDEO_RECHECK_MS) return;
  videoOf = { liveId, at: Date.now() };
  if (!liveId) return playVideo(null);
  const record = await api<{ playbackUrl: string | null }>(`/v1/lives/${encodeURIComponent(liveId)}`);
  playVideo(record.playbackUrl);
}

async function loadDensity(): Promise<void> {
  clearTimeout(densityTimer);
  const live = densityLive;
  if (!live || document.hidden || densityLoading) return;
  densityLoading = true;
  try {
    const answer = await fetchRecentDensity(live.liveId, Date.now() - live.startedAt, DENSITY_WINDOW_MS, densityCanvas.clientWidth);
    if (densityLive?.liveId !== live.liveId) return;
    densityCurve.show(answer);
    const peak = densityCurve.peak;
    const label = peak ? `Peak: ${peak.count} comments around ${new Date(live.startedAt + peak.atMs).toLocaleTimeString()}` : 'No comments yet';
    byId('density-peak').textContent = label;
    densityCanvas.title = label;
  } catch {
    // The next round tries again.
  } finally {
    densityLoading = false;
  }
  // Stopped meanwhile when the live ended or the page hid; another live that began is read at once.
  if (densityLive && !document.hidden) densityTimer = setTimeout(() => void loadDensity(), densityLive.liveId === live.liveId ? DENSITY_EVERY_MS : 0);
}

/** The room's live as the last room state said: the strip follows it, or hides and stops. */
function followDensity(live: RoomState['live']): void {
  const changed = live?.liveId !== densityLive?.liveId;
  densityLive = live;
  byId('live-density').hidden = live === null;
  if (!changed) return;
  clearTimeout(densityTimer);
  densityCurve.show(null);
  byId('density-peak').textContent = '';
  if (live) void loadDensity();
}

async function refreshRoom(): Promise<void> {
  try {
    const state = await api<RoomState>(roomPath);
    const badge = byId('live-status');
    badge.textContent = state.live ? 'LIVE' : 'offline';
    badge.classList.toggle('live', state.live !== null);
    byId('video-live').textContent = state.live ? `live since ${new Date(state.live.startedAt).toLocaleTimeString()}` : 'not live right now';
    byId('online').textContent = String(state.online);
    setLikes(state.likes);
    followDensity(state.live);
    await refreshVideo(state.live).catch(() => undefined);
    const { users, online } = await api<{ online: number; users: { id: string; name: string }[] }>(`${roomPath}/users?limit=50`);
    const list = byId('viewers');
    list.replaceChildren(
      ...users.map((u) => {
        const item = document.createElement('li');
        item.textContent = u.id === me?.sub ? `${u.name} (you)` : u.name;
        return item;
      }),
    );
    byId('viewer-count').textContent = `(${online})`;
  } catch {
    // The next refresh tries again; the SDK keeps the danmaku going meanwhile.
  }
}

function showIdentity(): void {
  byId('whoami').textContent = me ? `Signed in as ${me.name} (${me.role}, id ${me.sub}).` : 'Watching without a token: you can read but not send.';
  byId<HTMLTextAreaElement>('token').value = token;
}

async function useToken(next: string): Promise<void> {
  const claims = next ? claimsOf(next) : null;
  if (next && !claims) return say('That does not look like a token (three base64url parts).', true);
  if (token && token !== next) void api(`${roomPath}/leave`, { method: 'POST', token }).catch(() => undefined);
  token = next;
  me = claims;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  showIdentity();
  say(token ? 'Token in use.' : 'Token forgotten.');
  await connect();
  await enter();
  await refreshRoom();
}

async function send(body: { type: 'comment' | 'gift'; content?: string; giftId?: string; count?: number }): Promise<boolean> {
  if (!client || !token) {
    say('Sending needs a token: paste one or get a dev token.', true);
    return false;
  }
  try {
    // One clientMsgId per send: a retry of this send (HTTP fallback) is the same message.
    await client.send({ ...body, clientMsgId: newClientMsgId() });
    say('');
    return true;
  } catch (err) {
    say(describe(err), true);
    return false;
  }
}

byId('room-name').textContent = roomId;
byId('video-room').textContent = roomId;
byId<HTMLAnchorElement>('replay-link').href = `/replay?room=${encodeURIComponent(roomId)}`;
byId<HTMLAnchorElement>('studio-link').href = `/studio/${encodeURIComponent(roomId)}`;
document.title = `Danmaku · ${roomId}`;
showIdentity();

byId<HTMLFormElement>('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('comment');
  const content = input.value.trim();
  if (!content) return;
  void send({ type: 'comment', content }).then((ok) => {
    if (ok) input.value = '';
  });
});
document.querySelectorAll<HTMLButtonElement>('.gift-btn').forEach((button) => {
  button.addEventListener('click', () => void send({ type: 'gift', giftId: button.dataset.gift ?? 'rose', count: 1 }));
});
byId('like').addEventListener('click', () => {
  if (!token) return say('Liking needs a token.', true);
  void api(`${roomPath}/likes`, { method: 'POST', token, body: { count: 1 } })
    .then(() => refreshRoom())
    .catch((err: unknown) => say(describe(err), true));
});
byId('use-token').addEventListener('click', () => void useToken(byId<HTMLTextAreaElement>('token').value.trim()));
byId('forget-token').addEventListener('click', () => void useToken(''));
byId('dev-token').addEventListener('click', () => {
  const name = byId<HTMLInputElement>('dev-name').value.trim() || `viewer-${Math.floor(Math.random() * 1000)}`;
  api<{ token: string }>('/v1/dev/token', { method: 'POST', body: { name } })
    .then(({ token: minted }) => useToken(minted))
    .catch((err: unknown) =>
      say(`No dev token: ${describe(err)}. This server has its own DANMAKU_JWT_SECRET, so tokens come from your login service: paste one.`, true),
    );
});
addEventListener('pagehide', () => {
  // keepalive lets the request outlive the page; sendBeacon cannot carry the Authorization header.
  if (token) void fetch(`${roomPath}/leave`, { method: 'POST', keepalive: true, headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
});

document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearTimeout(densityTimer);
  else void loadDensity();
});

void connect().then(enter).then(refreshRoom);
setInterval(() => void refreshRoom(), 3000);
