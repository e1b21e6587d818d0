// The request hot path's building blocks: forwarding, limits, metering. Each takes its
// dependencies (capabilities, plain data, repositories) as arguments; the app wires them.
export {
  type ForwarderOptions,
  type ForwardOutcome,
  type ForwardResult,
  Forwarder,
  type ProxyIdentity,
} from './proxy/forward.js';
export { sendJsonError } from './proxy/respond.js';
export { type CompiledRoute, compileRoute, type ProxyRoute, RouteTable, upstreamPath } from './proxy/routes.js';
