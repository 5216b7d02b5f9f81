export { startProcessor, redisAnnouncer, ADVANCED_CHANNEL, type ProcessorOptions, type RoomAdvanced } from './processor.js';
