export { ownerOf, startPusher, type Pusher, type PusherOptions, type PushMode } from './pusher.js';
export { pusherRole } from './role.js';
export type { PusherSettings } from './settings.js';
