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
export { routerRole } from './role.js';
export type { RouterSettings } from './settings.js';
