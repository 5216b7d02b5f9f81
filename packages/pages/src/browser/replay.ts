/**
 * The replay page (`/replay/:liveId`, `/replay?live=ID`, `/replay?room=ID` to pick one).
 *
 * The playhead is the recording's own clock (`video.currentTime`) when the live has a
 * `recordingUrl` (its time 0 is the live's start); without one a timer is the video. The page
 * fetches `GET /v1/lives/:liveId/messages` windows ahead of the playhead and shows each message
 * when the playhead passes its `offsetMs`, drawn as far along as it would be at that moment. Seek,
 * pause, buffering and rate changes of the video move, stop and speed up the danmaku with it.
 * Without a video, when the next window has not arrived yet, the clock waits (like a player
 * buffering) rather than skipping messages.
 */
import type { Message } from '@danmaku/client';
import { api, byId, describe, idFromLocation } from './common.js';
import { DensityCurve, fetchDensity } from './density.js';
import { Stage } from './stage.js';
import { attachVideo, type Attached } from './video.js';

const WINDOW_MS = 30_000;
/** Fetch the next window once the playhead is this close to the end of what is buffered. */
const LOOKAHEAD_MS = 10_000;
const TICK_MS = 100;
/** A live still on: read no closer to "now" than this, so the archiver has written what we read. */
const ARCHIVE_LAG_MS = 3000;
/** After a seek, read this far back too: comments sent just before are still on screen. */
const LOOKBACK_MS = 15_000;
/** A live still on: its density curve is read again this often. */
const DENSITY_EVERY_MS = 15_000;

interface Live {
  liveId: string;
  roomId: string;
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  recordingUrl?: string | null;
}

const stage = new Stage(byId('stage'), { timed: true });
const video = byId<HTMLVideoElement>('player');
/** The recording being played; null: the timer is the clock. */
let attached: Attached | null = null;
/** Where the last seek put the playhead: the timer waits there until the look-back is read. */
let anchor = 0;
const range = byId<HTMLInputElement>('timeline');
let live: Live | null = null;
let playing = false;
/** The clock: the playhead was `head` at performance.now() = `at`. */
let clock = { at: 0, head: 0 };
let shownUpTo = 0;
let shown = 0;
let buffer: Message[] = [];
let fetchedTo = 0;
let fetching = false;
/** Bumped on every seek so a window fetched for the old position is dropped. */
let generation = 0;
const density = new DensityCurve(byId<HTMLCanvasElement>('density'), {
  onSeek: (ms) => {
    seek(ms);
    tick();
  },
});
let densityTimer: ReturnType<typeof setTimeout> | undefined;
/** How far the live's messages reach: past its end when comments were imported from a longer recording. */
let reachMs = 0;

/** The curve of the open live; a live still on is read again every few seconds. */
async function loadDensity(liveId: string): Promise<void> {
  clearTimeout(densityTimer);
  try {
    const answer = await fetchDensity(liveId, byId('density').clientWidth);
    if (live?.liveId === liveId) {
      reachMs = answer.durationMs;
      density.show(answer);
    }
  } catch {
    // The curve is a help, not the replay: without it the seek bar works as before.
  }
  if (live?.liveId === liveId && live.endedAt === null) densityTimer = setTimeout(() => void loadDensity(liveId), DENSITY_EVERY_MS);
}

function say(text: string, isError = false): void {
  const status = byId('replay-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function duration(): number {
  if (!live) return 0;
  if (attached && Number.isFinite(video.duration)) return Math.max(video.duration * 1000, live.durationMs ?? 0, reachMs);
  return live.durationMs === null ? Date.now() - live.startedAt : Math.max(live.durationMs, reachMs);
}

function format(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function playhead(): number {
  if (attached) return video.currentTime * 1000;
  return playing ? clock.head + (performance.now() - clock.at) : clock.head;
}

function setClock(head: number): void {
  clock = { at: performance.now(), head };
}

async function fetchAhead(): Promise<void> {
  if (!live || fetching) return;
  // A window is read once: for a live still on it must end where the archive is complete.
  const limit = live.durationMs === null ? duration() - ARCHIVE_LAG_MS : Math.max(live.durationMs, reachMs);
  if (fetchedTo >= limit) return;
  const to = live.durationMs === null ? Math.min(fetchedTo + WINDOW_MS, limit) : fetchedTo + WINDOW_MS;
  fetching = true;
  const mine = generation;
  try {
    let from = fetchedTo;
    const got: Message[] = [];
    // A window may come in several pages (`next`); the window is buffered only when complete.
    for (;;) {
      const page = await api<{ messages: Message[]; next: number | null }>(
        `/v1/lives/${encodeURIComponent(live.liveId)}/messages?from=${from}&to=${to}&types=comment,gift,system&limit=1000`,
      );
      if (mine !== generation) return;
      got.push(...page.messages);
      if (page.next === null || page.next >= to) break;
      from = page.next;
    }
    buffer = [...buffer, ...got].sort((a, b) => (a.offsetMs ?? 0) - (b.offsetMs ?? 0));
    fetchedTo = to;
    say('');
  } catch (err) {
    if (mine === generation) say(`Could not load messages: ${describe(err)}; retrying.`, true);
  } finally {
    if (mine === generation) fetching = false;
  }
}

function tick(): void {
  if (!live) return;
  const end = duration();
  let head = Math.min(playhead(), end);
  const hold = Math.max(fetchedTo, anchor);
  if (attached) {
    byId('replay-state').textContent = video.paused ? 'paused' : video.readyState < 3 ? 'buffering' : 'playing';
  } else if (playing && head >= hold && fetchedTo < end) {
    // Buffering: the timer does not pass what has been fetched (a video keeps its own clock).
    head = hold;
    setClock(head);
    byId('replay-state').textContent = 'buffering';
  } else {
    byId('replay-state').textContent = playing ? 'playing' : 'paused';
  }
  if (fetchedTo - head < LOOKAHEAD_MS) void fetchAhead();
  const due: Message[] = [];
  // `<=`: paused exactly on a comment's moment shows it (at the start of its flight).
  while (buffer.length > 0 && (buffer[0]?.offsetMs ?? 0) <= head) {
    const m = buffer.shift() as Message;
    if ((m.offsetMs ?? 0) >= shownUpTo) due.push(m);
  }
  if (due.length > 0) {
    // Each is drawn where it would be now: a comment of 4.2 s seen at 5 s has flown 0.8 s.
    const at = head;
    stage.show(due, undefined, (m) => Math.max(0, at - (m.offsetMs ?? 0)));
    shown += due.length;
    byId('shown').textContent = String(shown);
  }
  // Shown up to the playhead only as far as the messages have been read.
  shownUpTo = Math.max(shownUpTo, Math.min(head, fetchedTo));
  range.max = String(end);
  density.setTotal(end);
  if (document.activeElement !== range) range.value = String(head);
  byId('clock').textContent = `${format(head)} / ${format(end)}`;
  if (!attached && playing && head >= end && live.durationMs !== null) setPlaying(false);
}

function showPlaying(on: boolean): void {
  playing = on;
  byId('play').textContent = on ? '⏸ Pause' : '▶ Play';
}

function setPlaying(on: boolean): void {
  if (attached) {
    // The video's own events (play, pause, waiting, playing) move the danmaku.
    if (on) void video.play().catch((err: unknown) => say(`Cannot play: ${describe(err)}`, true));
    else video.pause();
    return;
  }
  if (on && playhead() >= duration() && live?.durationMs !== null) seek(0);
  setClock(playhead());
  showPlaying(on);
  if (on) stage.resume();
  else stage.pause();
}

/** The playhead jumped: forget what was read and shown, read again from a little before it. */
function resetAt(head: number): void {
  generation++;
  fetching = false;
  buffer = [];
  anchor = head;
  fetchedTo = Math.max(0, head - LOOKBACK_MS);
  shownUpTo = fetchedTo;
  stage.clear();
  setClock(head);
}

function seek(head: number): void {
  if (attached) {
    // The 'seeking' event resets the danmaku, whoever moved the video (this range or its controls).
    video.currentTime = head / 1000;
    return;
  }
  resetAt(head);
}

video.addEventListener('seeking', () => {
  if (!attached) return;
  resetAt(video.currentTime * 1000);
  tick();
});
video.addEventListener('seeked', () => attached && tick());
video.addEventListener('play', () => attached && showPlaying(true));
video.addEventListener('playing', () => attached && stage.resume());
video.addEventListener('waiting', () => attached && stage.pause());
video.addEventListener('pause', () => {
  if (!attached) return;
  showPlaying(false);
  stage.pause();
  tick();
});
video.addEventListener('ratechange', () => stage.setRate(video.playbackRate));
video.addEventListener('loadedmetadata', () => attached && tick());

function useRecording(url: string | null | undefined): void {
  attached?.detach();
  attached = null;
  byId('video').classList.toggle('has-video', Boolean(url));
  video.hidden = !url;
  stage.setRate(1);
  if (!url) return;
  attached = attachVideo(video, url, (why) => {
    say(`The recording does not play (${why}); the danmaku follow a timer instead.`, true);
    const at = playhead();
    useRecording(null);
    resetAt(at);
    tick();
  });
}

async function open(liveId: string): Promise<void> {
  try {
    live = await api<Live>(`/v1/lives/${encodeURIComponent(liveId)}`);
  } catch (err) {
    say(`Cannot open live ${liveId}: ${describe(err)}`, true);
    return;
  }
  byId('live-title').textContent = `${live.liveId} · room ${live.roomId}`;
  byId('video-title').textContent = `⏮ ${live.roomId}`;
  byId<HTMLAnchorElement>('room-link').href = `/rooms/${encodeURIComponent(live.roomId)}`;
  const when = new Date(live.startedAt).toLocaleString();
  byId('video-sub').textContent = live.endedAt === null ? `live since ${when} (still on)` : `live of ${when}, ${format(live.durationMs ?? 0)} long`;
  document.title = `Danmaku · replay ${live.liveId}`;
  history.replaceState(null, '', `/replay/${encodeURIComponent(live.liveId)}`);
  const files = `/v1/lives/${encodeURIComponent(live.liveId)}/danmaku`;
  byId<HTMLAnchorElement>('ass-link').href = `${files}.ass`;
  byId<HTMLAnchorElement>('xml-link').href = `${files}.xml`;
  byId('danmaku-files').hidden = false;
  density.show(null);
  reachMs = 0;
  void loadDensity(live.liveId);
  useRecording(live.recordingUrl);
  showPlaying(false);
  resetAt(0);
  stage.pause();
  tick();
}

async function listLives(roomId: string): Promise<void> {
  try {
    const { lives } = await api<{ lives: Live[] }>(`/v1/rooms/${encodeURIComponent(roomId)}/lives`);
    byId('lives').replaceChildren(
      ...lives.map((l) => {
        const item = document.createElement('li');
        const link = document.createElement('a');
        link.href = `/replay/${encodeURIComponent(l.liveId)}`;
        link.textContent = `${new Date(l.startedAt).toLocaleString()} · ${l.durationMs === null ? 'on now' : format(l.durationMs)}`;
        link.addEventListener('click', (event) => {
          event.preventDefault();
          void open(l.liveId);
        });
        item.append(link);
        return item;
      }),
    );
    if (lives.length === 0) say(`Room ${roomId} has no lives yet.`);
  } catch (err) {
    say(describe(err), true);
  }
}

byId('play').addEventListener('click', () => setPlaying(!playing));
range.addEventListener('input', () => {
  seek(Number(range.value));
  tick();
});
byId<HTMLFormElement>('open-live').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = byId<HTMLInputElement>('live-id').value.trim();
  if (id) void open(id);
});
byId<HTMLFormElement>('find-lives').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = byId<HTMLInputElement>('room-id').value.trim();
  if (id) void listLives(id);
});

const initialLive = idFromLocation('replay', 'live');
const initialRoom = new URLSearchParams(location.search).get('room');
if (initialRoom) {
  byId<HTMLInputElement>('room-id').value = initialRoom;
  void listLives(initialRoom);
}
if (initialLive) void open(initialLive);
else if (!initialRoom) say('Open a live by id, or list the lives of a room.');
setInterval(tick, TICK_MS);
