import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// This file runs as .build/test/cli.test.js; the CLI it drives is the compiled .build/src/cli.js.
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const USAGE_HINT = 'Run "apisix-node-runner --help" for usage.';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a real child process with a clean environment (only PATH, plus `env`). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Exit 2, nothing on stdout, and exactly: one message line naming `mentions`, then the usage hint. */
async function assertUsageError(args: string[], env: Record<string, string>, mentions: string[]): Promise<void> {
  const { code, stdout, stderr } = await cli(args, env);
  assert.equal(code, 2, `exit code for ${JSON.stringify(args)} ${JSON.stringify(env)}: ${stderr}`);
  assert.equal(stdout, '');
  const lines = stderr.split('\n');
  assert.equal(lines.length, 3, `two lines: ${JSON.stringify(stderr)}`);
  assert.equal(lines[2], '');
  assert.match(lines[0]!, /^apisix-node-runner: /);
  for (const text of mentions) assert.ok(lines[0]!.includes(text), `${JSON.stringify(lines[0])} mentions ${text}`);
  assert.equal(lines[1], USAGE_HINT);
}

describe('option errors exit 2 with one line naming the option and the value', () => {
  const longPath = `/tmp/${'x'.repeat(110)}.sock`;
  const cases: Array<[string, string[], Record<string, string>, string[]]> = [
    ['--listen scheme', ['run', '--listen', 'tcp:127.0.0.1:9000'], {}, ['--listen', '"tcp:127.0.0.1:9000"']],
    ['--listen length', ['run', '--listen', longPath], {}, ['--listen', '107 bytes', JSON.stringify(longPath)]],
    ['--listen relative', ['run', '--listen', 'runner.sock'], {}, ['--listen', '"runner.sock"']],
    ['--listen missing value', ['run', '--listen'], {}, ['--listen', 'requires a value']],
    ['APISIX_LISTEN_ADDRESS', ['run'], { APISIX_LISTEN_ADDRESS: 'http://gw:9000' }, ['APISIX_LISTEN_ADDRESS', '"http://gw:9000"']],
    ['API7_LISTEN_ADDRESS', ['run'], { API7_LISTEN_ADDRESS: 'x.sock' }, ['API7_LISTEN_ADDRESS', '"x.sock"']],
    ['--socket-mode', ['run', '--socket-mode', '999'], {}, ['--socket-mode', '0000 and 0777', '"999"']],
    ['--conf-expire-time', ['run', '--conf-expire-time', '0'], {}, ['--conf-expire-time', '"0"']],
    ['APISIX_CONF_EXPIRE_TIME', ['run'], { APISIX_CONF_EXPIRE_TIME: 'abc' }, ['APISIX_CONF_EXPIRE_TIME', 'seconds', '"abc"']],
    ['API7_CONF_EXPIRE_TIME', ['run'], { API7_CONF_EXPIRE_TIME: '-1' }, ['API7_CONF_EXPIRE_TIME', '"-1"']],
    ['--max-tokens', ['run', '--max-tokens', 'lots'], {}, ['--max-tokens', '"lots"']],
    ['--plugins', ['run', '--plugins', '/no/such/plugin.js'], {}, ['--plugins', '"/no/such/plugin.js"', 'does not exist']],
    ['--skip-unknown-plugins', ['run', '--skip-unknown-plugins=yes'], {}, ['--skip-unknown-plugins', '"yes"']],
    ['--drain-ms', ['run', '--drain-ms', '60001'], {}, ['--drain-ms', '"60001"']],
    ['--call-timeout-ms', ['run', '--call-timeout-ms', '0'], {}, ['--call-timeout-ms', '"0"']],
    ['--no-exit-with-parent', ['run', '--no-exit-with-parent=false'], {}, ['--no-exit-with-parent', '"false"']],
    ['--log-level', ['run', '--log-level', 'loud'], {}, ['--log-level', '"loud"']],
    ['--log-file', ['run', '--log-file', ''], {}, ['--log-file', '""']],
    ['unknown flag', ['run', '--lissen', '/tmp/a.sock'], {}, ['unknown option --lissen']],
    ['positional', ['run', 'extra'], {}, ['"extra"']],
  ];
  for (const [name, args, env, mentions] of cases) {
    test(name, () => assertUsageError(args, env, mentions));
  }
});

describe('commands', () => {
  test('an unknown command exits 2', () => assertUsageError(['serve'], {}, ['unknown command "serve"']));

  test('options before "run" exit 2 and say where they go', () =>
    assertUsageError(['--listen', '/tmp/a.sock'], {}, ['--listen', 'after']));

  test('version and --version print the package version', async () => {
    for (const arg of ['version', '--version']) {
      const { code, stdout, stderr } = await cli([arg]);
      assert.equal(code, 0);
      assert.equal(stdout, `apisix-node-runner ${PACKAGE.version}\n`);
      assert.equal(stderr, '');
    }
  });

  test('help, --help, -h, no arguments and "run --help" print the help listing every flag, exit 0', async () => {
    const flags = [
      '--listen',
      '--socket-mode',
      '--conf-expire-time',
      '--max-tokens',
      '--plugins',
      '--skip-unknown-plugins',
      '--drain-ms',
      '--call-timeout-ms',
      '--no-exit-with-parent',
      '--log-level',
      '--log-file',
      'APISIX_LISTEN_ADDRESS',
      'API7_LISTEN_ADDRESS',
      'APISIX_CONF_EXPIRE_TIME',
      'API7_CONF_EXPIRE_TIME',
    ];
    for (const args of [['--help'], ['-h'], ['help'], [], ['run', '--help']]) {
      const { code, stdout, stderr } = await cli(args);
      assert.equal(code, 0, `exit code for ${JSON.stringify(args)}`);
      assert.equal(stderr, '');
      assert.match(stdout, /^Usage: apisix-node-runner <command>/);
      for (const flag of flags) assert.ok(stdout.includes(flag), `help for ${JSON.stringify(args)} lists ${flag}`);
    }
  });
});
