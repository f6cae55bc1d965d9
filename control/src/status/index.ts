// Route status: what compiling found about each HTTPRoute and GRPCRoute, written to the API server.
export { MESH_CONTROLLER_NAME, desiredParents, existingParents, parentRefJson, type ConditionJson, type DesiredParents, type ParentStatusJson } from './parents.js';
export {
  RouteStatusWriter,
  DEFAULT_CONFLICT_WAIT_MS,
  DEFAULT_STATUS_DEBOUNCE_MS,
  DEFAULT_STATUS_MAX_ATTEMPTS,
  statusPath,
  type RouteStatusWriterOptions,
  type StatusClient,
} from './writer.js';
export {
  ACCEPTED_MESSAGE,
  AUTHORIZATION_STATUS,
  AuthorizationStatusWriter,
  PolicyStatusWriter,
  authorizationStatusPath,
  desiredConditions,
  type AuthorizationStatusWriterOptions,
  type PolicyStatusKind,
  type RejectedObjects,
} from './authorization.js';
export { RATE_LIMIT_ACCEPTED_MESSAGE, RATE_LIMIT_STATUS, RateLimitStatusWriter, rateLimitStatusPath, reviewRateLimit } from './rate-limit.js';
