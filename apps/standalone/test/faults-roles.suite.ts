// The fault suite, part 1: kill -9 of one instance of each role (see faults-harness.ts).
import { faultSuite } from './faults-harness.js';

faultSuite('roles', ['kill -9 processor', 'kill -9 archiver', 'kill -9 pusher', 'kill -9 connector', 'kill -9 front', 'kill -9 router']);
