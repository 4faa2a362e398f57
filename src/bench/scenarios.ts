/**
 * The bench scenarios: what the route's ext-plugin conf is, what the gateway side sends and answers,
 * and what reply counts as a success. Each one isolates one cost of a real deployment.
 */
import type { ConfEntry, Expect, Phase, Workload } from './types.js';

export interface Scenario {
  name: string;
  description: string;
  phase: Phase;
  conf: ConfEntry[];
  expect: Expect;
  /** ExtraInfo answers. */
  vars: Record<string, string>;
  reqBodyBytes: number;
  respBodyBytes: number;
  /** Needs the plugins of `fixture-plugins.ts` (an external runner must provide them). */
  fixtures: boolean;
  /** What a reader of this scenario's figures must know (copied into every report). */
  notes: string[];
}

/** Variables every scenario can answer (what APISIX would for route 1). */
export const DEFAULT_VARS: Record<string, string> = {
  route_id: '1',
  route_name: 'bench-route',
  remote_addr: '10.0.0.7',
  server_addr: '127.0.0.1',
  request_time: '0.001',
  consumer_name: 'bench-consumer',
};

const conf = (name: string, value: unknown): ConfEntry => ({ name, value: JSON.stringify(value) });

const POOL_NOTE = 'needs a runner with the worker pool (commit 2e41244 or later, --threads 1 or more); a runner without one runs the plugin inline';

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'say',
    description: 'Light Stop: the built-in `say` answers 200 with a short body; no ExtraInfo. The runner\'s fixed cost per call.',
    phase: 'req',
    conf: [conf('say', { body: 'hello' })],
    expect: 'stop',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: false,
    notes: [],
  },
  {
    name: 'header-rewrite',
    description: 'Built-in `header-rewrite`: set and remove request headers, set a response header (Rewrite reply).',
    phase: 'req',
    conf: [conf('header-rewrite', { set: { 'X-Api-Version': '2' }, remove: ['X-Debug'], resp_set: { 'Cache-Control': 'no-store' } })],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: false,
    notes: [],
  },
  {
    name: 'extra-var',
    description: 'One ExtraInfo Var round trip per call (`route_id`), then a Rewrite: the cost of one gateway query.',
    phase: 'req',
    conf: [conf('bench-var', { vars: ['route_id'] })],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'extra-var-3',
    description: 'Three ExtraInfo Var round trips per call (`route_id`, `remote_addr`, `consumer_name`), one after the other.',
    phase: 'req',
    conf: [conf('bench-var', { vars: ['route_id', 'remote_addr', 'consumer_name'] })],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'req-body-1k',
    description: 'The plugin reads a 1 KiB request body through ExtraInfo ReqBody, then rewrites (POST/PUT requests).',
    phase: 'req',
    conf: [conf('bench-body', {})],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 1024,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'req-body-1m',
    description: 'The plugin reads a 1 MiB request body through ExtraInfo ReqBody, then rewrites.',
    phase: 'req',
    conf: [conf('bench-body', {})],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 1024 * 1024,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'resp-body-rewrite',
    description: 'Response phase (`ext-plugin-post-resp`): built-in `response-rewrite` reads a 16 KiB upstream body through ExtraInfo RespBody and rewrites it with a regex filter.',
    phase: 'resp',
    conf: [conf('response-rewrite', { filters: [{ regex: 'world', scope: 'global', replace: 'node' }] })],
    expect: 'resp-body',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 16 * 1024,
    fixtures: false,
    notes: [],
  },
  {
    name: 'noop',
    description: 'A plugin that does nothing, inline on the main thread (no action reply): the baseline for noop-pool.',
    phase: 'req',
    conf: [conf('bench-noop', {})],
    expect: 'none',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'noop-pool',
    description: 'The same no-op plugin declared `placement: \'pool\'`: what the hand-off to a worker thread costs by itself.',
    phase: 'req',
    conf: [conf('bench-noop-pool', {})],
    expect: 'none',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [POOL_NOTE],
  },
  {
    name: 'cpu-heavy',
    description: 'CPU-heavy filter: PBKDF2-SHA256 with 1000 iterations (about 200 us of CPU here) per call, inline on the main thread, then Stop.',
    phase: 'req',
    conf: [conf('bench-cpu', { iterations: 1000 })],
    expect: 'stop',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [],
  },
  {
    name: 'cpu-heavy-pool',
    description: 'The same CPU-heavy filter declared `placement: \'pool\'`: each call is handed to a worker thread (compare with cpu-heavy, inline).',
    phase: 'req',
    conf: [conf('bench-cpu-pool', { iterations: 1000 })],
    expect: 'stop',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [POOL_NOTE],
  },
  {
    name: 'extra-var-pool',
    description: 'extra-var with the plugin on the worker pool, `var()` asked lazily from the worker: the query crosses threads.',
    phase: 'req',
    conf: [conf('bench-var-pool', { vars: ['route_id'] })],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [POOL_NOTE],
  },
  {
    name: 'extra-var-pool-declared',
    description: 'extra-var-pool with the variable declared in the plugin\'s `needs`: fetched on the main thread before the hand-off.',
    phase: 'req',
    conf: [conf('bench-var-pool-declared', { vars: ['route_id'] })],
    expect: 'rewrite',
    vars: DEFAULT_VARS,
    reqBodyBytes: 0,
    respBodyBytes: 0,
    fixtures: true,
    notes: [POOL_NOTE],
  },
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** The load generator's view of a scenario. */
export function workloadOf(s: Scenario, overrides: Partial<Workload> = {}): Workload {
  return {
    phase: s.phase,
    conf: s.conf,
    confKey: `route#1#ext-plugin-${s.phase === 'req' ? 'pre-req' : 'post-resp'}#bench-${s.name}`,
    expect: s.expect,
    vars: s.vars,
    reqBodyBytes: s.reqBodyBytes,
    respBodyBytes: s.respBodyBytes,
    variants: 64,
    seed: 1,
    ...overrides,
  };
}
