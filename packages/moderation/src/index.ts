export { Moderation, createModeration, moderationKeys, type ModerationOptions, type PinnedNotice, type RoomModeration } from './moderation.js';
export { WordFilter, type FilterMode } from './words.js';
export { ModerationMirror, MODERATION_CHANNEL, type MirrorOptions, type MirrorVerdict } from './mirror.js';
export { SharedRates, type SharedRatesOptions } from './rates.js';
