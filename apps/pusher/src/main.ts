import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { pusherRole } from './role.js';

await runMain(pusherRole, openProcessShared);
