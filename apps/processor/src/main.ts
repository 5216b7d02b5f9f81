import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { processorRole } from './role.js';

await runMain(processorRole, openProcessShared);
