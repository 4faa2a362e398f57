/**
 * A strict checker of the Prometheus text exposition format 0.0.4, written from the format's
 * specification independently of src/metrics/prometheus.ts (not a test file: the tests import it).
 * Stricter than Prometheus itself where our output should be: every family has HELP then TYPE
 * before its samples, no family appears twice, histogram buckets are cumulative and end with
 * `le="+Inf"` equal to `_count`.
 */
import { strict as assert } from 'node:assert';

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
/** A label value: any characters but `"`, `\` and newline, which must be escaped as \" \\ \n. */
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\["\\\\n])*"';
const LABEL = `${LABEL_NAME}=${LABEL_VALUE}`;
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const HELP_TEXT = /^(?:[^\\]|\\[\\n])*$/;

function parseLabels(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (text === undefined) return out;
  for (const m of text.matchAll(new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g'))) {
    assert.ok(!out.has(m[1]), `label ${m[1]} repeated`);
    out.set(m[1], m[2]);
  }
  return out;
}

/** Throws an AssertionError naming the first line that breaks the grammar. */
export function validateExposition(text: string): void {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const seen = new Set<string>();
  let family: { name: string; type: string } | null = null;
  let pendingHelp: string | null = null;
  const histograms = new Map<string, { buckets: Array<[number, number]>; count: number | null }>();
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    assert.notEqual(line, '', `${where}: no empty lines`);
    const help = HELP.exec(line);
    if (help !== null) {
      assert.ok(HELP_TEXT.test(help[2]), `${where}: help text escapes only \\\\ and \\n`);
      assert.ok(!seen.has(help[1]), `${where}: family ${help[1]} appears twice`);
      pendingHelp = help[1];
      continue;
    }
    const type = TYPE.exec(line);
    if (type !== null) {
      assert.equal(type[1], pendingHelp, `${where}: TYPE follows the HELP of the same family`);
      seen.add(type[1]);
      family = { name: type[1], type: type[2] };
      pendingHelp = null;
      continue;
    }
    assert.ok(!line.startsWith('#'), `${where}: only HELP and TYPE comments`);
    const sample = SAMPLE.exec(line);
    assert.ok(sample !== null, `${where}: not a valid sample line`);
    assert.ok(family !== null, `${where}: sample before any TYPE`);
    const name = sample[1];
    const labels = parseLabels(sample[2]);
    const value = Number(sample[3].replace('Inf', 'Infinity'));
    const suffixes =
      family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : family.type === 'summary' ? ['', '_sum', '_count'] : [''];
    assert.ok(suffixes.some((s) => name === family!.name + s), `${where}: sample of family ${family.name}`);
    if (family.type === 'counter') assert.ok(family.name.endsWith('_total') && value >= 0, `${where}: counters end in _total and are not negative`);
    if (family.type === 'summary' && name === family.name) assert.ok(labels.has('quantile'), `${where}: summary samples carry a quantile`);
    if (family.type === 'histogram') {
      const key = `${family.name}${[...labels].filter(([k]) => k !== 'le').map(([k, v]) => `${k}=${v}`).join(',')}`;
      const series = histograms.get(key) ?? { buckets: [], count: null };
      histograms.set(key, series);
      if (name.endsWith('_bucket')) {
        const le = labels.get('le');
        assert.ok(le !== undefined, `${where}: buckets carry le`);
        series.buckets.push([Number(JSON.parse(le).replace('+Inf', 'Infinity')), value]);
      } else if (name.endsWith('_count')) series.count = value;
    }
  }
  assert.equal(pendingHelp, null, 'the last HELP has its TYPE');
  for (const [key, { buckets, count }] of histograms) {
    assert.ok(buckets.length > 0, `${key}: has buckets`);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i][0] > buckets[i - 1][0], `${key}: le bounds increase`);
      assert.ok(buckets[i][1] >= buckets[i - 1][1], `${key}: bucket counts are cumulative`);
    }
    assert.equal(buckets.at(-1)![0], Infinity, `${key}: the last bucket is +Inf`);
    assert.equal(buckets.at(-1)![1], count, `${key}: +Inf equals _count`);
  }
}
