import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { routerRole } from './role.js';

await runMain(routerRole, openProcessShared);
