export { startConnector, biliWsUrl, type Connector, type ConnectorOptions } from './connector.js';
export { ConnectorCore } from './core.js';
export { BilibiliTransport, BILI_WS_PATH } from './bilibili.js';
export type { Transport, Session, RoomEvent } from './transport.js';
export { RoomHub, groupKey, BUDGET_TARGET } from './rooms.js';
export { connectorRole } from './role.js';
export type { ConnectorSettings } from './settings.js';
