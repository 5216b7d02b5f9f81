// Prints a development token: npm run token -- --sub u1 --name Ann --role viewer [--rooms r1,r2] [--ttl 86400]
import { parseArgs } from 'node:util';
import { createAuth, ROLES, type Role } from '@danmaku/auth';
import { loadConfig } from '@danmaku/config';

const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'u1' },
    name: { type: 'string' },
    role: { type: 'string', default: 'viewer' },
    rooms: { type: 'string', default: '' },
    ttl: { type: 'string', default: '86400' },
  },
});
if (!(ROLES as readonly string[]).includes(values.role ?? '')) {
  process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
  process.exit(2);
}
const rooms = (values.rooms ?? '').split(',').filter(Boolean);
const auth = createAuth(loadConfig().jwtSecret);
const token = auth.sign({ sub: values.sub ?? 'u1', name: values.name ?? values.sub ?? 'u1', role: values.role as Role, ...(rooms.length ? { rooms } : {}) }, Number(values.ttl));
process.stdout.write(token + '\n');
