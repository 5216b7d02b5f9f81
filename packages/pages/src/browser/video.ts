/**
 * A live's video under the danmaku: HLS (.m3u8) through hls.js (Media Source Extensions), or the
 * browser's own HLS where there is no MSE (iOS Safari); MP4 and WebM straight into <video>.
 */
import Hls from 'hls.js';

export interface Attached {
  url: string;
  detach(): void;
}

function isHls(url: string): boolean {
  try {
    return new URL(url, location.href).pathname.toLowerCase().endsWith('.m3u8');
  } catch {
    return false;
  }
}

/** Plays `url` in `video`; `onError` hears what went wrong (a bad link, an unplayable format). */
export function attachVideo(video: HTMLVideoElement, url: string, onError: (why: string) => void): Attached {
  // hls.js first wherever Media Source Extensions exist (as its authors advise): the same player
  // everywhere; native HLS (iOS Safari, no MSE) otherwise.
  if (isHls(url) && Hls.isSupported()) {
    // No worker: the pages' CSP allows scripts from this origin only, and one thread is plenty.
    const hls = new Hls({ enableWorker: false });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) onError(`HLS: ${data.details}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return { url, detach: () => hls.destroy() };
  }
  const failed = () => onError(`video: ${video.error?.message || `error ${video.error?.code ?? '?'}`}`);
  video.addEventListener('error', failed);
  video.src = url;
  return {
    url,
    detach: () => {
      video.removeEventListener('error', failed);
      video.removeAttribute('src');
      video.load();
    },
  };
}
