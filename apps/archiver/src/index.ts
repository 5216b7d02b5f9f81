export { startArchiver, type ArchiverOptions } from './archiver.js';
export { archiverRole } from './role.js';
export type { ArchiverSettings } from './settings.js';
