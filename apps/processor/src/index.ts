export { startProcessor, redisAnnouncer, type ProcessorOptions } from './processor.js';
export { GearBox, DEFAULT_GEAR_OPTIONS, type GearOptions } from './gears.js';
export { processorRole } from './role.js';
export type { ProcessorSettings } from './settings.js';
