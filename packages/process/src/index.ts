export { ProcessShared, openProcessShared, type FrontServer, type Shared } from './shared.js';
