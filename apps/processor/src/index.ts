export { startProcessor, redisAnnouncer, type ProcessorOptions } from './processor.js';
export { GearBox, DEFAULT_GEAR_OPTIONS, type GearOptions } from './gears.js';
export { processorRole, type ProcessorSettings } from './role.js';
