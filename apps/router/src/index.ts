export {
  routerRoutes,
  decideRoute,
  grayBucket,
  versionMatches,
  bilibiliEndpoints,
  DEFAULT_ROUTE_CONFIG,
  type RouteConfig,
  type RouteLists,
  type RouteAnswer,
  type RouterDeps,
} from './router.js';
export { routerRole, type RouterSettings } from './role.js';
