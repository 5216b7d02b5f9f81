export { startPusher, pusherSettings, type Pusher, type PusherOptions, type PushMode } from './pusher.js';
