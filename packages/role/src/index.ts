export type { FrontServer, Role, RoleContext, RunningRole, SettingsOf, Shared } from './role.js';
export { ProcessShared, type SharedOptions } from './shared.js';
export { runMain, runRoles, type AnyRole, type RunningRoles } from './run.js';
export { defineRole } from './define.js';
