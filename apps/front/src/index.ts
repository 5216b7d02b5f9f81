export { buildFront } from './app.js';
export type { FrontDeps } from './context.js';
