import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { InvalidOptionError } from '../src/errors.js';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_CONF_EXPIRE_SECONDS,
  DEFAULT_DRAIN_MS,
  DEFAULT_MAX_TOKENS,
  DEFAULT_SOCKET_MODE,
  HELP_TEXT,
  LOG_LEVELS,
  resolveOptions,
} from '../src/options.js';

type Env = Record<string, string | undefined>;

const scratch = mkdtempSync(join(tmpdir(), 'anr-options-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const pluginFile = join(scratch, 'plugin.js');
writeFileSync(pluginFile, 'export default [];\n');
const pluginDir = mkdtempSync(join(scratch, 'plugins-'));

/** Asserts an InvalidOptionError whose one-line message names the option and (quoted) the value. */
function assertInvalid(argv: string[], env: Env, option: string, value?: string): string {
  let caught: unknown;
  try {
    resolveOptions(argv, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidOptionError, `expected InvalidOptionError for ${JSON.stringify(argv)}, got ${String(caught)}`);
  assert.equal(caught.code, 'ANR_ERR_INVALID_OPTION');
  assert.ok(!caught.message.includes('\n'), `one line: ${caught.message}`);
  assert.ok(caught.message.includes(option), `names ${option}: ${caught.message}`);
  if (value !== undefined) assert.ok(caught.message.includes(JSON.stringify(value)), `names ${JSON.stringify(value)}: ${caught.message}`);
  return caught.message;
}

describe('resolveOptions defaults', () => {
  test('no flags and no env give the documented defaults', () => {
    const o = resolveOptions([], {});
    assert.deepEqual(
      { ...o },
      {
        listenPath: '/tmp/runner.sock',
        listenSource: 'default',
        socketMode: 0o766,
        confExpireSeconds: 3600,
        confExpireSource: 'default',
        maxTokens: 100_000,
        pluginPaths: [],
        skipUnknownPlugins: false,
        drainMs: 800,
        threads: availableParallelism(),
        maxQueue: 4096,
        callTimeoutMs: 56_000,
        exitWithParent: true,
        logLevel: 'warn',
        logFile: null,
        metricsAddr: null,
        summaryIntervalS: 60,
      },
    );
    assert.equal(DEFAULT_SOCKET_MODE, 0o766);
    assert.equal(DEFAULT_CONF_EXPIRE_SECONDS, 3600);
    assert.equal(DEFAULT_MAX_TOKENS, 100_000);
    assert.equal(DEFAULT_DRAIN_MS, 800);
    assert.equal(DEFAULT_CALL_TIMEOUT_MS, 56_000);
  });

  test('--threads 0..256 (0 disables the pool) and --max-queue 1..1000000, with messages naming the flag', () => {
    assert.equal(resolveOptions(['--threads', '0'], {}).threads, 0);
    assert.equal(resolveOptions(['--threads', '8'], {}).threads, 8);
    assert.equal(resolveOptions(['--max-queue', '10'], {}).maxQueue, 10);
    assert.throws(() => resolveOptions(['--threads', '257'], {}), /--threads .*"257"/);
    assert.throws(() => resolveOptions(['--threads', '-1'], {}), /--threads/);
    assert.throws(() => resolveOptions(['--max-queue', '0'], {}), /--max-queue .*"0"/);
    assert.throws(() => resolveOptions(['--max-queue', 'lots'], {}), /--max-queue .*"lots"/);
  });

  test('the options object and its plugin list are frozen', () => {
    const o = resolveOptions(['--plugins', pluginFile], {});
    assert.ok(Object.isFrozen(o));
    assert.ok(Object.isFrozen(o.pluginPaths));
    assert.throws(() => {
      (o as { drainMs: number }).drainMs = 1;
    }, TypeError);
    assert.throws(() => (o.pluginPaths as string[]).push('/x'), TypeError);
  });
});

describe('listen address', () => {
  test('precedence: --listen > APISIX_LISTEN_ADDRESS > API7_LISTEN_ADDRESS > default, with the source', () => {
    const env = { APISIX_LISTEN_ADDRESS: 'unix:/run/a.sock', API7_LISTEN_ADDRESS: 'unix:/run/b.sock' };
    let o = resolveOptions(['--listen', '/run/flag.sock'], env);
    assert.equal(o.listenPath, '/run/flag.sock');
    assert.equal(o.listenSource, '--listen');
    o = resolveOptions([], env);
    assert.equal(o.listenPath, '/run/a.sock');
    assert.equal(o.listenSource, 'APISIX_LISTEN_ADDRESS');
    o = resolveOptions([], { API7_LISTEN_ADDRESS: 'unix:/run/b.sock' });
    assert.equal(o.listenPath, '/run/b.sock');
    assert.equal(o.listenSource, 'API7_LISTEN_ADDRESS');
    o = resolveOptions([], {});
    assert.equal(o.listenPath, '/tmp/runner.sock');
    assert.equal(o.listenSource, 'default');
  });

  test('an empty env var counts as unset', () => {
    const o = resolveOptions([], { APISIX_LISTEN_ADDRESS: '', API7_LISTEN_ADDRESS: 'unix:/run/b.sock' });
    assert.equal(o.listenSource, 'API7_LISTEN_ADDRESS');
  });

  test('the unix: prefix is optional, in flags and env', () => {
    assert.equal(resolveOptions(['--listen', 'unix:/run/x.sock'], {}).listenPath, '/run/x.sock');
    assert.equal(resolveOptions(['--listen=/run/x.sock'], {}).listenPath, '/run/x.sock');
    assert.equal(resolveOptions([], { APISIX_LISTEN_ADDRESS: '/run/y.sock' }).listenPath, '/run/y.sock');
    // The gateway's own default form.
    const gw = 'unix:/usr/local/apisix/conf/apisix-1.sock';
    assert.equal(resolveOptions([], { APISIX_LISTEN_ADDRESS: gw }).listenPath, '/usr/local/apisix/conf/apisix-1.sock');
  });

  test('other schemes and relative paths are refused, naming the source and the value', () => {
    assertInvalid(['--listen', 'tcp:127.0.0.1:9000'], {}, '--listen', 'tcp:127.0.0.1:9000');
    assertInvalid(['--listen', 'http://localhost:9000'], {}, '--listen', 'http://localhost:9000');
    assertInvalid(['--listen', 'runner.sock'], {}, '--listen', 'runner.sock');
    assertInvalid(['--listen', 'unix:runner.sock'], {}, '--listen', 'unix:runner.sock');
    assertInvalid(['--listen', ''], {}, '--listen', '');
    assertInvalid([], { APISIX_LISTEN_ADDRESS: 'tcp:1.2.3.4:1' }, 'APISIX_LISTEN_ADDRESS', 'tcp:1.2.3.4:1');
    assertInvalid([], { API7_LISTEN_ADDRESS: 'relative/x.sock' }, 'API7_LISTEN_ADDRESS', 'relative/x.sock');
  });

  test('path length: 107 bytes is accepted, 108 is refused citing the sun_path limit', () => {
    const path107 = `/tmp/${'a'.repeat(107 - '/tmp/'.length)}`;
    assert.equal(Buffer.byteLength(path107), 107);
    assert.equal(resolveOptions(['--listen', path107], {}).listenPath, path107);
    assert.equal(resolveOptions(['--listen', `unix:${path107}`], {}).listenPath, path107, 'the prefix does not count');
    const path108 = `${path107}b`;
    const message = assertInvalid(['--listen', path108], {}, '--listen', path108);
    assert.match(message, /107 bytes/);
    assert.match(message, /sun_path/);
    assert.match(message, /got 108 bytes/);
  });

  test('the limit counts UTF-8 bytes, not characters', () => {
    const path = `/tmp/${'é'.repeat(52)}`; // 5 + 104 bytes
    assert.equal(Buffer.byteLength(path), 109);
    assertInvalid(['--listen', path], {}, '--listen', path);
  });
});

describe('socket mode', () => {
  test('octal with or without a leading 0 or 0o', () => {
    assert.equal(resolveOptions(['--socket-mode', '0766'], {}).socketMode, 0o766);
    assert.equal(resolveOptions(['--socket-mode', '766'], {}).socketMode, 0o766);
    assert.equal(resolveOptions(['--socket-mode', '0700'], {}).socketMode, 0o700);
    assert.equal(resolveOptions(['--socket-mode', '0o600'], {}).socketMode, 0o600);
    assert.equal(resolveOptions(['--socket-mode', '0000'], {}).socketMode, 0);
    assert.equal(resolveOptions(['--socket-mode', '0777'], {}).socketMode, 0o777);
  });

  test('anything else is refused with the expected range and the value', () => {
    for (const bad of ['999', '0800', '1777', '07777', '', 'rwx', '-1', '0x1ff', ' 766']) {
      const message = assertInvalid(['--socket-mode', bad], {}, '--socket-mode', bad);
      assert.match(message, /octal file mode between 0000 and 0777/);
    }
    assert.equal(
      assertInvalid(['--socket-mode', '999'], {}, '--socket-mode'),
      '--socket-mode must be an octal file mode between 0000 and 0777 (got "999")',
    );
  });
});

describe('conf expire time', () => {
  test('precedence: flag > APISIX_CONF_EXPIRE_TIME > API7_CONF_EXPIRE_TIME > default, with the source', () => {
    const env = { APISIX_CONF_EXPIRE_TIME: '60', API7_CONF_EXPIRE_TIME: '120' };
    let o = resolveOptions(['--conf-expire-time', '30'], env);
    assert.deepEqual([o.confExpireSeconds, o.confExpireSource], [30, '--conf-expire-time']);
    o = resolveOptions([], env);
    assert.deepEqual([o.confExpireSeconds, o.confExpireSource], [60, 'APISIX_CONF_EXPIRE_TIME']);
    o = resolveOptions([], { API7_CONF_EXPIRE_TIME: '120' });
    assert.deepEqual([o.confExpireSeconds, o.confExpireSource], [120, 'API7_CONF_EXPIRE_TIME']);
    o = resolveOptions([], {});
    assert.deepEqual([o.confExpireSeconds, o.confExpireSource], [3600, 'default']);
  });

  test('a positive integer number of seconds, named by its source', () => {
    for (const bad of ['abc', '0', '-1', '1.5', '1e3', '0x10', '', '99999999999999999999']) {
      assertInvalid(['--conf-expire-time', bad], {}, '--conf-expire-time', bad);
    }
    const message = assertInvalid([], { APISIX_CONF_EXPIRE_TIME: 'abc' }, 'APISIX_CONF_EXPIRE_TIME', 'abc');
    assert.match(message, /positive integer number of seconds/);
    assertInvalid([], { API7_CONF_EXPIRE_TIME: '-5' }, 'API7_CONF_EXPIRE_TIME', '-5');
    // A lower-precedence source is not read at all once a higher one is set.
    assert.equal(resolveOptions([], { APISIX_CONF_EXPIRE_TIME: '10', API7_CONF_EXPIRE_TIME: 'abc' }).confExpireSeconds, 10);
  });

  test('bounded so 1.2 x the lifetime fits a Node timer', () => {
    assert.equal(resolveOptions(['--conf-expire-time', '1000000'], {}).confExpireSeconds, 1_000_000);
    assertInvalid(['--conf-expire-time', '1000001'], {}, '--conf-expire-time', '1000001');
  });
});

describe('integer options', () => {
  test('--max-tokens: positive integer up to the uint32 token space', () => {
    assert.equal(resolveOptions(['--max-tokens', '1'], {}).maxTokens, 1);
    assert.equal(resolveOptions(['--max-tokens', '4294967295'], {}).maxTokens, 2 ** 32 - 1);
    for (const bad of ['0', '-3', 'many', '4294967296', '10.0']) assertInvalid(['--max-tokens', bad], {}, '--max-tokens', bad);
  });

  test('--drain-ms: 0..60000', () => {
    assert.equal(resolveOptions(['--drain-ms', '0'], {}).drainMs, 0);
    assert.equal(resolveOptions(['--drain-ms', '60000'], {}).drainMs, 60_000);
    for (const bad of ['60001', '-5', 'soon', '']) assertInvalid(['--drain-ms', bad], {}, '--drain-ms', bad);
    assert.match(assertInvalid(['--drain-ms', '60001'], {}, '--drain-ms'), /between 0 and 60000/);
  });

  test('--call-timeout-ms: 1..3600000', () => {
    assert.equal(resolveOptions(['--call-timeout-ms', '1'], {}).callTimeoutMs, 1);
    assert.equal(resolveOptions(['--call-timeout-ms=3600000'], {}).callTimeoutMs, 3_600_000);
    for (const bad of ['0', '3600001', '5s']) assertInvalid(['--call-timeout-ms', bad], {}, '--call-timeout-ms', bad);
  });
});

describe('plugins', () => {
  test('repeatable, resolved against the working directory, in order, duplicates dropped', () => {
    const rel = relative(process.cwd(), pluginFile);
    const o = resolveOptions(['--plugins', rel, '--plugins', pluginDir, `--plugins=${pluginFile}`], {});
    assert.deepEqual(o.pluginPaths, [pluginFile, pluginDir]);
  });

  test('a missing path is refused, naming the resolved path and the value given', () => {
    const missing = join(scratch, 'nope.js');
    const message = assertInvalid(['--plugins', pluginFile, '--plugins', missing], {}, '--plugins', missing);
    assert.match(message, /does not exist/);
    const rel = relative(process.cwd(), missing);
    assertInvalid(['--plugins', rel], {}, '--plugins', rel);
    assertInvalid(['--plugins', ''], {}, '--plugins', '');
  });
});

describe('booleans', () => {
  test('--skip-unknown-plugins and --no-exit-with-parent', () => {
    assert.equal(resolveOptions(['--skip-unknown-plugins'], {}).skipUnknownPlugins, true);
    assert.equal(resolveOptions(['--no-exit-with-parent'], {}).exitWithParent, false);
    assert.equal(resolveOptions(['--no-exit-with-parent', '--exit-with-parent'], {}).exitWithParent, true, 'last wins');
  });

  test('a boolean flag given a value is refused', () => {
    assertInvalid(['--skip-unknown-plugins=false'], {}, '--skip-unknown-plugins', 'false');
    assertInvalid(['--no-exit-with-parent=1'], {}, '--no-exit-with-parent', '1');
  });
});

describe('logging', () => {
  test('--log-level accepts every pino level, any case', () => {
    for (const level of LOG_LEVELS) assert.equal(resolveOptions(['--log-level', level], {}).logLevel, level);
    assert.equal(resolveOptions(['--log-level', 'DEBUG'], {}).logLevel, 'debug');
    const message = assertInvalid(['--log-level', 'verbose'], {}, '--log-level', 'verbose');
    assert.match(message, /fatal, error, warn, info, debug, trace, silent/);
  });

  test('--log-file is made absolute; empty is refused', () => {
    assert.equal(resolveOptions(['--log-file', 'logs/runner.log'], {}).logFile, join(process.cwd(), 'logs/runner.log'));
    assertInvalid(['--log-file', ''], {}, '--log-file', '');
  });
});

describe('command-line shape', () => {
  test('an unknown flag is named', () => {
    assertInvalid(['--lisen', '/tmp/x.sock'], {}, '--lisen');
    assertInvalid(['--foo=bar'], {}, '--foo');
    assertInvalid(['-x'], {}, '-x');
    assert.equal(assertInvalid(['--verbose'], {}, '--verbose'), 'unknown option --verbose');
  });

  test('a flag without its value is named, at the end or before another flag', () => {
    assert.equal(assertInvalid(['--listen'], {}, '--listen'), '--listen requires a value');
    assertInvalid(['--socket-mode', '--log-level', 'debug'], {}, '--socket-mode');
    assertInvalid(['--plugins'], {}, '--plugins');
    assertInvalid(['--log-file', '--no-exit-with-parent'], {}, '--log-file');
  });

  test('positional arguments and repeated single-value flags are refused', () => {
    assertInvalid(['/tmp/x.sock'], {}, 'unexpected argument', '/tmp/x.sock');
    assertInvalid(['--', '--listen'], {}, '"--"');
    assertInvalid(['--drain-ms', '1', '--drain-ms', '2'], {}, '--drain-ms', '2');
  });

  test('HELP_TEXT lists every flag with its env var and default', () => {
    for (const flag of [
      '--listen',
      'APISIX_LISTEN_ADDRESS',
      'API7_LISTEN_ADDRESS',
      'unix:/tmp/runner.sock',
      '--socket-mode',
      '0766',
      '--conf-expire-time',
      'APISIX_CONF_EXPIRE_TIME',
      'API7_CONF_EXPIRE_TIME',
      '--max-tokens',
      '100000',
      '--plugins',
      '--skip-unknown-plugins',
      '--drain-ms',
      '800',
      '--call-timeout-ms',
      '56000',
      '--no-exit-with-parent',
      '--log-level',
      '--log-file',
      'version',
      'help',
    ]) {
      assert.ok(HELP_TEXT.includes(flag), `help mentions ${flag}`);
    }
  });
});
