import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { InvalidOptionError } from '../../src/errors.js';
import { HELP_TEXT, resolveOptions } from '../../src/options.js';

function invalid(argv: string[], ...parts: string[]): void {
  assert.throws(
    () => resolveOptions(argv, {}),
    (err: unknown) => err instanceof InvalidOptionError && parts.every((p) => err.message.includes(p)),
    `${argv.join(' ')} is refused naming ${parts.join(', ')}`,
  );
}

describe('--metrics-addr and --summary-interval-s', () => {
  test('off by default; the summary every 60 s', () => {
    const options = resolveOptions([], {});
    assert.equal(options.metricsAddr, null);
    assert.equal(options.summaryIntervalS, 60);
  });

  test('a port alone listens on loopback; hosts are IP literals or localhost', () => {
    const addr = (raw: string) => resolveOptions(['--metrics-addr', raw], {}).metricsAddr;
    assert.deepEqual(addr('9091'), { host: '127.0.0.1', port: 9091 });
    assert.deepEqual(addr(':9091'), { host: '127.0.0.1', port: 9091 });
    assert.deepEqual(addr('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(addr('localhost:9091'), { host: 'localhost', port: 9091 });
    assert.deepEqual(addr('[::1]:9091'), { host: '::1', port: 9091 });
    assert.deepEqual(addr('0.0.0.0:9091'), { host: '0.0.0.0', port: 9091 });
    assert.ok(Object.isFrozen(addr('9091')));
  });

  test('anything else is refused naming the flag and the value', () => {
    for (const raw of ['', 'x', '9091x', '70000', 'example.com:9091', '::1:9091', '127.0.0.1:', '[::1]', 'http://127.0.0.1:9091']) {
      invalid(['--metrics-addr', raw], '--metrics-addr', JSON.stringify(raw));
    }
    invalid(['--summary-interval-s', '-1'], '--summary-interval-s');
    invalid(['--summary-interval-s', '86401'], '--summary-interval-s', '86400');
    assert.equal(resolveOptions(['--summary-interval-s', '0'], {}).summaryIntervalS, 0);
  });

  test('the help lists both flags and the doctor command', () => {
    for (const text of ['--metrics-addr HOST:PORT', '--summary-interval-s N', 'doctor ']) assert.ok(HELP_TEXT.includes(text), text);
  });
});
