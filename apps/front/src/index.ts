export { buildFront } from './app.js';
export type { FrontContext, FrontDeps } from './context.js';
export { frontRole, FRONT_SETTINGS, type FrontSettings } from './role.js';
