export { startPusher, type Pusher, type PusherOptions, type PushMode } from './pusher.js';
