// The fault suite, part 2: the infrastructure fails under the roles (see faults-harness.ts).
import { faultSuite } from './faults-harness.js';

faultSuite('infra', ['Redis primary killed (failover)', 'MariaDB restarted', 'Kafka brokers SIGSTOP 10 s']);
