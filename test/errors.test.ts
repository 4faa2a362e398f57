import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as errors from '../src/errors.js';
import { ErrCode } from '../src/protocol/constants.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

function errorClasses(): Array<[string, errors.RunnerError]> {
  const out: Array<[string, errors.RunnerError]> = [];
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || value === errors.RunnerError) continue;
    if (!(value.prototype instanceof errors.RunnerError)) continue;
    // Construct with placeholder arguments just to read the code the class assigns.
    const instance = new (value as unknown as new (...args: unknown[]) => errors.RunnerError)('x', 'y');
    out.push([name, instance]);
  }
  return out;
}

test('every error class has a stable ANR_ERR_ code, its class name, and a row in docs/errors.md', () => {
  const classes = errorClasses();
  assert.ok(classes.length >= 10);
  for (const [name, instance] of classes) {
    assert.match(instance.code, /^ANR_ERR_[A-Z_]+$/, name);
    assert.equal(instance.name, name);
    assert.ok(doc.includes(`| \`${instance.code}\` | \`${name}\` |`), `${instance.code} (${name}) is not documented in docs/errors.md`);
  }
});

test('every code documented in docs/errors.md exists', () => {
  const codes = new Set(errorClasses().map(([, e]) => e.code));
  const documented = [...doc.matchAll(/^\| `(ANR_ERR_[A-Z_]+)`/gm)].map((m) => m[1]);
  assert.ok(documented.length >= 10);
  for (const code of documented) assert.ok(codes.has(code), `${code} is documented but no error class uses it`);
});

test('wireErrCode maps each failure to the reply the gateway needs', () => {
  assert.equal(errors.wireErrCode(new errors.ConfTokenNotFoundError(7)), ErrCode.ConfTokenNotFound);
  assert.equal(errors.wireErrCode(new errors.MalformedPayloadError('bad')), ErrCode.BadRequest);
  assert.equal(errors.wireErrCode(new errors.UnexpectedRpcTypeError(9)), ErrCode.BadRequest);
  assert.equal(errors.wireErrCode(new errors.FrameTooLargeError(2 ** 24)), ErrCode.ServiceUnavailable);
  assert.equal(errors.wireErrCode(new errors.PluginFailedError('p', new Error('x'))), ErrCode.ServiceUnavailable);
  assert.equal(errors.wireErrCode(new errors.ShuttingDownError()), ErrCode.ServiceUnavailable);
  assert.equal(errors.wireErrCode(new Error('anything else')), ErrCode.ServiceUnavailable);
});
