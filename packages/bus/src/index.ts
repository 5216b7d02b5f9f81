export { BusUnavailableError, type Batch, type BatchHandler, type Bus, type BusRecord, type ConsumeOptions, type Consumer, type ProduceRecord } from './bus.js';
export { MemoryBus, type MemoryBusOptions } from './memory.js';
export { KafkaBus, kafkaSecurity, type KafkaBusOptions, type KafkaSecurity } from './kafka.js';
export { openBus } from './open.js';
export { stopConsumer } from './stop.js';
