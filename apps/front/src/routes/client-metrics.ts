import { CLIENT_METRIC_KINDS, type ClientMetricKind, NO_CONTROL_CHARS } from '@danmaku/protocol';
import { counter, histogram } from '@danmaku/observability';
import type { FastifyInstance } from '@danmaku/http';

export const clientMetricsBodySchema = {
  type: 'object',
  required: ['samples'],
  additionalProperties: false,
  properties: {
    sdk: { type: 'string', maxLength: 32, pattern: NO_CONTROL_CHARS },
    samples: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        required: ['kind', 'mode'],
        additionalProperties: false,
        properties: {
          kind: { type: 'string', enum: CLIENT_METRIC_KINDS },
          mode: { type: 'string', enum: ['long', 'short'] },
          /** connect: time to a joined room; delivery: message ts -> shown; others: unused. */
          ms: { type: 'integer', minimum: 0, maximum: 600_000 },
        },
      },
    },
  },
} as const;

interface ClientMetricsBody {
  sdk?: string;
  samples: { kind: ClientMetricKind; mode: 'long' | 'short'; ms?: number }[];
}

const events = counter<'kind' | 'mode'>({ name: 'danmaku_client_events_total', help: 'Connection events reported by clients', labelNames: ['kind', 'mode'] });
const connectSeconds = histogram<'mode'>({
  name: 'danmaku_client_connect_seconds',
  help: 'Client-reported time from starting a connection to a joined room',
  labelNames: ['mode'],
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
});
const deliverySeconds = histogram<'mode'>({
  name: 'danmaku_client_delivery_seconds',
  help: 'Client-reported message ts -> received',
  labelNames: ['mode'],
  buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5],
});

/** `POST /v1/client-metrics`: end-to-end connection monitoring from the clients' side. No token needed. */
export async function clientMetricsRoutes(app: FastifyInstance): Promise<void> {
  app.post<{ Body: ClientMetricsBody }>('/v1/client-metrics', { schema: { body: clientMetricsBodySchema } }, async (request, reply) => {
    for (const sample of request.body.samples) {
      events.inc({ kind: sample.kind, mode: sample.mode });
      if (sample.ms === undefined) continue;
      if (sample.kind === 'connect') connectSeconds.observe({ mode: sample.mode }, sample.ms / 1000);
      else if (sample.kind === 'delivery') deliverySeconds.observe({ mode: sample.mode }, sample.ms / 1000);
    }
    return reply.code(202).send({ ok: true, accepted: request.body.samples.length });
  });
}
