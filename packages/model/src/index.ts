export * from './message.js';
export * from './cursor.js';
export * from './errors.js';
export * from './schemas.js';
export * from './send.js';
