import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { frontRole } from './role.js';

await runMain(frontRole, openProcessShared);
