/**
 * Plugins the bench scenarios need beyond the built-ins. The harness loads this module into the
 * runner it starts with `--plugins <this file>`; an external runner must provide its own plugins of
 * the same names and behaviour to run these scenarios.
 *
 * - `bench-var`: reads variables through ExtraInfo (one round trip each, in order) and sets
 *   `x-bench-<name>` request headers from them (Rewrite). Conf `{"vars": ["route_id"]}`.
 * - `bench-body`: reads the request body through ExtraInfo and sets `x-body-bytes` (Rewrite).
 * - `bench-cpu`: burns CPU like a signature check would: PBKDF2-SHA256 of the path with
 *   `iterations` rounds (default 1000: about 0.2 us per round on this project's machine, so about
 *   200 us per call), then answers Stop 200 with the digest in a header.
 *
 * Each is declared `placement: 'inline'` (the main thread), so its scenario measures the same thing
 * on every runner version; the `-pool` twins are declared `placement: 'pool'` (a worker thread) for
 * the inline-versus-pool comparison, and `bench-var-pool-declared` also declares its ExtraInfo
 * `needs`, which a pool runner fetches before handing the call to a worker. A runner without a
 * worker pool ignores both fields and runs the twins inline.
 */
import { pbkdf2Sync } from 'node:crypto';
import { definePlugin, type Plugin, type PluginRequest, type RequestActions } from '../plugin.js';

interface VarConf {
  vars: string[];
}

interface CpuConf {
  iterations: number;
}

function object(value: string): Record<string, unknown> {
  const raw: unknown = value.trim() === '' ? {} : JSON.parse(value);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TypeError('conf must be a JSON object');
  return raw as Record<string, unknown>;
}

function parseVars(value: string): VarConf {
  const { vars = ['route_id'] } = object(value);
  if (!Array.isArray(vars) || vars.length === 0 || !vars.every((v) => typeof v === 'string' && v !== '')) {
    throw new TypeError('"vars" must be a non-empty array of variable names');
  }
  return { vars: vars as string[] };
}

async function varFilter(conf: VarConf, req: PluginRequest, res: RequestActions): Promise<void> {
  for (const name of conf.vars) res.setHeader(`x-bench-${name}`, (await req.var(name)) ?? '(absent)');
}

function parseCpu(value: string): CpuConf {
  const { iterations = 1000 } = object(value);
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) {
    throw new TypeError('"iterations" must be an integer from 1 to 1000000');
  }
  return { iterations };
}

const SALT = Buffer.from('apisix-node-runner-bench');

function cpuFilter(conf: CpuConf, req: PluginRequest, res: RequestActions): void {
  const digest = pbkdf2Sync(req.pathBytes, SALT, conf.iterations, 32, 'sha256');
  res.stop(200, { 'x-digest': digest.toString('hex') });
}

const benchVar = definePlugin<VarConf>({ name: 'bench-var', placement: 'inline', parseConf: parseVars, requestFilter: varFilter });
const benchVarPool = definePlugin<VarConf>({ name: 'bench-var-pool', placement: 'pool', parseConf: parseVars, requestFilter: varFilter });
const benchVarPoolDeclared = definePlugin<VarConf>({
  name: 'bench-var-pool-declared',
  placement: 'pool',
  // Needs are declared per plugin, not per conf: this one serves confs that read `route_id`.
  needs: { vars: ['route_id'] },
  parseConf: parseVars,
  requestFilter: varFilter,
});

const benchBody = definePlugin<Record<string, never>>({
  name: 'bench-body',
  placement: 'inline',
  parseConf: () => ({}),
  async requestFilter(_conf, req, res) {
    const body = await req.body();
    res.setHeader('x-body-bytes', String(body?.length ?? 0));
  },
});

/** Does nothing: what the hand-off to a worker thread costs by itself (bench-noop-pool against this). */
const benchNoop = definePlugin({ name: 'bench-noop', placement: 'inline', parseConf: () => ({}), requestFilter() {} });
const benchNoopPool = definePlugin({ name: 'bench-noop-pool', placement: 'pool', parseConf: () => ({}), requestFilter() {} });

const benchCpu = definePlugin<CpuConf>({ name: 'bench-cpu', placement: 'inline', parseConf: parseCpu, requestFilter: cpuFilter });
const benchCpuPool = definePlugin<CpuConf>({ name: 'bench-cpu-pool', placement: 'pool', parseConf: parseCpu, requestFilter: cpuFilter });

export default [benchVar, benchVarPool, benchVarPoolDeclared, benchBody, benchNoop, benchNoopPool, benchCpu, benchCpuPool] as Plugin[];
