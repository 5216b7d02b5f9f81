export { buildFront } from './app.js';
export type { FrontContext, FrontDeps } from './context.js';
