import { openProcessShared } from '@danmaku/process';
import { runMain } from '@danmaku/role';
import { connectorRole } from './role.js';

await runMain(connectorRole, openProcessShared);
