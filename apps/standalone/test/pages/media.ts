/**
 * Test videos made with Debian's ffmpeg: a moving test pattern with a clock burnt in, as VP8 WebM
 * (which Debian's Chromium plays without proprietary codecs) and as HLS with fMP4 segments of VP9
 * (which Chromium plays through hls.js); a keyframe every second so a seek lands quickly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `clip.webm` and `hls/index.m3u8` (with its segments) of `seconds` into `dir`. */
export function makeTestVideos(dir: string, seconds: number): void {
  const source = ['-f', 'lavfi', '-i', `testsrc2=size=480x270:rate=25:duration=${seconds}`];
  const fast = ['-b:v', '250k', '-g', '25', '-deadline', 'realtime', '-cpu-used', '8'];
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...source, '-c:v', 'libvpx', ...fast, join(dir, 'clip.webm')]);
  mkdirSync(join(dir, 'hls'), { recursive: true });
  execFileSync('ffmpeg', [
    '-loglevel', 'error', '-y', ...source, '-c:v', 'libvpx-vp9', ...fast,
    '-f', 'hls', '-hls_time', '2', '-hls_segment_type', 'fmp4', '-hls_playlist_type', 'vod',
    join(dir, 'hls', 'index.m3u8'),
  ]);
}
