// The fault suite, part 4: the Kafka brokers fail under load (see faults-harness.ts).
import { faultSuite } from './faults-harness.js';

faultSuite('kafka', ['Kafka partition leader killed -9', 'Kafka all brokers down 20 s', 'Kafka rolling restart']);
