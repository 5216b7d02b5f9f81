/**
 * The SDK for a `<script>` tag: what the front serves at /sdk/danmaku.js (ESM) and
 * /sdk/danmaku.iife.js (a global `Danmaku`). Everything of the package, and `<danmaku-layer>`
 * defined on load.
 */
export * from './index.js';
export { GIFTS, giftLabel, Stage, STAGE_CSS, styleOf, type DanmakuMode, type StageOptions } from './stage.js';
export { ReplayFeed, type ReplayFeedOptions } from './replay-feed.js';
export { DanmakuLayer } from './layer.js';
export { connectArtplayer, liveDanmuku, toArtDanmu, type ArtDanmu, type ArtDanmukuPlugin, type LiveDanmukuOptions } from './artplayer.js';
