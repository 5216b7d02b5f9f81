export { startProcessor, redisAnnouncer, gearOptionsFrom, processorSettings, type ProcessorOptions } from './processor.js';
export { GearBox, DEFAULT_GEAR_OPTIONS, type GearOptions } from './gears.js';
