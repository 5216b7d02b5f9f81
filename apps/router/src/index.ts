export {
  routerRoutes,
  decideRoute,
  grayBucket,
  versionMatches,
  bilibiliEndpoints,
  rankConnectors,
  DEFAULT_ROUTE_CONFIG,
  type RouteConfig,
  type RouteLists,
  type RouterDeps,
} from './router.js';
export { routerRole, type RouterSettings } from './role.js';
export type { RouteAnswer } from '@danmaku/protocol';
