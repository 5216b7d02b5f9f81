import { runMain } from '@danmaku/role';
import { processorRole } from './role.js';

await runMain(processorRole);
