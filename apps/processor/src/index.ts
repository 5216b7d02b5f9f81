export { startProcessor, redisAnnouncer, gearOptionsFrom, ADVANCED_CHANNEL, type ProcessorOptions, type RoomAdvanced } from './processor.js';
export { GearBox, DEFAULT_GEAR_OPTIONS, type GearOptions } from './gears.js';
