export { startArchiver, type ArchiverOptions } from './archiver.js';
