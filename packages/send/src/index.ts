export { buildMessage, createSendPipeline, type SendPipeline, type SendPipelineOptions } from './pipeline.js';
export { openSend, type SendPath } from './open.js';
