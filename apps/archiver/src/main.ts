import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { archiverRole } from './role.js';

await runMain(archiverRole, openProcessShared);
