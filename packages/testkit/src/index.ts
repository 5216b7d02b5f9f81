export { startMockKafka, type MockKafka } from './mock-kafka.js';
