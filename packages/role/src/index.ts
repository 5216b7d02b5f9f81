export type { Role, RoleContext, RunningRole, SettingsOf } from './role.js';
export { runMain, runRoles, type AnyRole, type OpenResources, type ProcessOptions, type ProcessResources, type RunningRoles } from './run.js';
export { defineRole } from './define.js';
