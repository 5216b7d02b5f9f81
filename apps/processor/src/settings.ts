import type { Config } from '@danmaku/config';

/** Every setting the processor reads: its slice of the configuration. */
export const PROCESSOR_SETTINGS = ['host', 'processorPort', 'topic', 'processorBatch', 'processorLingerMs', 'gearUpMs', 'gearDownMs', 'gearHoldMs', 'gearCoolMs', 'gearInFlight'] as const;
export type ProcessorSettings = Pick<Config, (typeof PROCESSOR_SETTINGS)[number]>;
