export { buildFront } from './app.js';
export type { FrontContext, FrontDeps } from './context.js';
export { frontRole } from './role.js';
export { FRONT_SETTINGS, type FrontSettings } from './settings.js';
