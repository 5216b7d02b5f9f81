export { ownerOf, startPusher, type Pusher, type PusherOptions, type PushMode } from './pusher.js';
export { pusherRole, type PusherSettings } from './role.js';
