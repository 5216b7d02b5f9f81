export { startConnector, type Connector, type ConnectorOptions } from './connector.js';
export { RoomHub, groupKey } from './rooms.js';
export { connectorRole, type ConnectorSettings } from './role.js';
