import { strict as assert } from 'node:assert';
import { after, describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { renderPrometheus } from '../../src/metrics/prometheus.js';
import { RunnerMetrics } from '../../src/metrics/runner-metrics.js';
import { buildStats, type StatsSources } from '../../src/metrics/stats.js';
import { ErrCode, RpcType } from '../../src/protocol/constants.js';
import { encodeErrResp } from '../../src/protocol/codec.js';
import { validateExposition } from './exposition-grammar.js';

const NASTY = 'we"ird\\name\nplugin';

const sources: StatsSources = {
  version: '9.9.9',
  socketPath: '/tmp/x.sock',
  config: { socketMode: '0766', threads: 0, maxQueue: 4096, drainMs: 800, callTimeoutMs: 56_000, confExpireSeconds: 3600, maxTokens: 100_000, logLevel: 'warn', summaryIntervalS: 0 },
  tokens: () => 3,
  server: () => ({ connectionsOpened: 2, connectionsClosed: 1, open: 1 }),
  pool: () => null,
  placements: () => [{ name: NASTY, mode: 'auto', where: 'inline', averageCpuUs: null, moves: 0, declaresNeeds: false }],
};

describe('the Prometheus exposition', () => {
  const metrics = new RunnerMetrics();
  after(() => metrics.close());

  test('escapes label values, keeps the grammar, and counts what was recorded', () => {
    const sample = metrics.sample();
    for (let i = 0; i < 5; i++) {
      sample.begin(RpcType.HttpReqCall);
      sample.chainRan(sample.startedMs, sample.startedMs, 0);
      metrics.recordFilter(0, NASTY, 12);
      sample.end(Buffer.from([RpcType.HttpReqCall, 0, 0, 0]));
    }
    sample.begin(RpcType.HttpReqCall);
    sample.end(encodeErrResp(ErrCode.ConfTokenNotFound));
    sample.begin(RpcType.PrepareConf);
    sample.abandon();
    metrics.connectionClosed(6);

    const text = renderPrometheus(metrics, buildStats(metrics, sources));
    validateExposition(text);
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    const calls = families.get('anr_calls_total')!.metrics;
    assert.equal(calls.find((m) => m.labels?.type === 'http_req_call')?.value, '6');
    assert.equal(families.get('anr_calls_abandoned_total')!.metrics[0].value, '1');
    assert.equal(families.get('anr_error_replies_total')!.metrics.find((m) => m.labels?.code === 'conf_token_not_found')?.value, '1');
    assert.equal(families.get('anr_conf_tokens')!.metrics[0].value, '3');
    const info = families.get('anr_plugin_info')!.metrics[0];
    assert.deepEqual(info.labels, { plugin: NASTY, mode: 'auto', where: 'inline' }, 'the parser unescapes what we escaped');
    assert.ok(text.includes('plugin="we\\"ird\\\\name\\nplugin"'));
    assert.equal(families.get('anr_info')!.metrics[0].labels?.version, '9.9.9');
    // Stages of the five calls that ran their chain; the failed call has a total only.
    assert.match(text, /^anr_call_duration_seconds_count\{type="http_req_call"\} 6$/m);
    assert.match(text, /^anr_call_stage_duration_seconds_count\{type="http_req_call",stage="chain"\} 5$/m);
    assert.match(text, /^anr_plugin_filter_duration_seconds_bucket\{plugin="we\\"ird\\\\name\\nplugin",phase="request",le="0\.000025"\} 5$/m);
    assert.match(text, /^anr_plugin_filter_duration_seconds_bucket\{plugin="we\\"ird\\\\name\\nplugin",phase="request",le="0\.00001"\} 0$/m);
    assert.match(text, /^anr_plugin_filter_duration_seconds_sum\{plugin="we\\"ird\\\\name\\nplugin",phase="request"\} 0\.00006$/m);
    assert.match(text, /^anr_connection_calls_bucket\{le="5"\} 0$/m);
    assert.match(text, /^anr_connection_calls_bucket\{le="10"\} 1$/m);
    assert.ok(!text.includes('stage="queue"'), 'series without values are left out');
  });

  test('the grammar checker itself refuses what Prometheus would refuse', () => {
    const ok = '# HELP a_total x\n# TYPE a_total counter\na_total 1\n';
    validateExposition(ok);
    assert.throws(() => validateExposition('a_total 1\n'), /sample before any TYPE/);
    assert.throws(() => validateExposition('# HELP a_total x\n# TYPE a_total counter\na_total{x="1} 1\n'), /not a valid sample/);
    assert.throws(() => validateExposition('# HELP a x\n# TYPE a gauge\na{x="a\nb"} 1\n'), /not a valid sample/);
    assert.throws(() => validateExposition('# HELP a_total x\n# TYPE a_total counter\na_total 1'), /ends with a newline/);
    assert.throws(
      () => validateExposition('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'),
      /cumulative/,
    );
    assert.throws(() => validateExposition('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'), /\+Inf/);
  });
});
