export { BusUnavailableError, type Batch, type BatchHandler, type Bus, type BusRecord, type ConsumeOptions, type Consumer, type ProduceRecord } from './bus.js';
export { MemoryBus, type MemoryBusOptions } from './memory.js';
export { KafkaBus, type KafkaBusOptions } from './kafka.js';
export { openBus } from './open.js';
