export { buildFront } from './app.js';
export type { FrontContext, FrontDeps } from './context.js';
export { frontRole } from './role.js';
export { FRONT_SETTINGS, type FrontSettings } from './settings.js';
// The poll memory and its shortest retry, for the system tests that hold them against a running standalone.
export { PollMemory } from './cache/memory.js';
export { MIN_RETRY_MS } from './cache/pace.js';
