/** HTTP answers and bodies the SDK and the servers both read: the router's answer, client metrics. */

/** `GET /v1/route`: where and how a client connects. */
export interface RouteAnswer {
  mode: 'long' | 'short';
  endpoints: string[];
  pollIntervalMs: number;
  /** Why (for people and dashboards): blacklist, whitelist, gray, outside_gray, disabled, forced_polling, no_connectors, router_unavailable (the SDK's own). */
  reason: string;
  /**
   * The Bilibili live protocol's endpoints of the same connectors (WebSocket URLs at /sub, TCP
   * host:port). Listed whatever the mode: gray release and the lists steer this project's SDK,
   * while the protocol's tools are pointed at a server by their operators.
   */
  bilibili?: { ws: string[]; tcp: string[] };
}

/** What the client SDK reports about its connections (`POST /v1/client-metrics`). */
export const CLIENT_METRIC_KINDS = ['connect', 'connect_failed', 'disconnect', 'degraded', 'long_restored', 'poll_failed', 'delivery'] as const;
export type ClientMetricKind = (typeof CLIENT_METRIC_KINDS)[number];
