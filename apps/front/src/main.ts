import { runMain } from '@danmaku/role';
import { frontRole } from './role.js';

await runMain(frontRole);
