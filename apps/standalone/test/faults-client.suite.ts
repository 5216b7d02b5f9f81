// The fault suite, part 3: a client that stops reading while messages flow (see faults-harness.ts).
import { faultSuite } from './faults-harness.js';

faultSuite('client', ['slow client buffer filled']);
