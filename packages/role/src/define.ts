import { pick, type Config, type ConfigSlice } from '@danmaku/config';
import type { Role, RoleContext, RunningRole } from './role.js';

/** A role whose settings are the named keys of the configuration, nothing else. */
export function defineRole<K extends keyof Config, P>(
  name: string,
  keys: readonly K[],
  start: (ctx: RoleContext<ConfigSlice<K>, P>) => Promise<RunningRole>,
): Role<ConfigSlice<K>, P> {
  return { name, settings: (config) => pick(config, keys), start };
}
