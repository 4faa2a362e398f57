/**
 * The public API of apisix-node-runner: define plugins, embed a runner. Everything under
 * `src/io`, `src/protocol` and `src/workers` is internal.
 */
export { definePlugin } from './plugin.js';
export type {
  ArgsView,
  HeadersInit,
  HeadersView,
  Placement,
  Plugin,
  PluginDefinition,
  PluginNeeds,
  PluginRequest,
  RequestActions,
  ResponseCallRequest,
  TextOrBytes,
  UpstreamResponse,
} from './plugin.js';
export { startRunner } from './runner.js';
export type { Runner, ShutdownReport, StartOptions } from './runner.js';
export type { MetricsAddress, RunnerOptions } from './options.js';
export type { HistogramSummary, PluginPhaseStats, PluginStats, RunnerStats, StatsConfig } from './metrics/stats.js';
export { resolveOptions } from './options.js';
export {
  CallTimeoutError,
  ConfTokenNotFoundError,
  ConnectionClosedError,
  FrameTooLargeError,
  InvalidHeaderError,
  InvalidOptionError,
  MalformedPayloadError,
  MetricsEndpointError,
  OverloadedError,
  PluginFailedError,
  PluginLoadError,
  RunnerError,
  ShuttingDownError,
  SocketPathError,
  SocketPathOccupiedError,
  UnexpectedRpcTypeError,
  WorkerFailedError,
} from './errors.js';
export type { HeaderRule } from './errors.js';
