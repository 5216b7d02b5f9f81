export { startArchiver, type ArchiverOptions } from './archiver.js';
export { archiverRole, type ArchiverSettings } from './role.js';
