export { startStandalone, standaloneRoles, type Standalone, type StandaloneOptions } from './standalone.js';
