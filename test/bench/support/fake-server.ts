/**
 * Deliberately wrong or slow "runners" for the harness's own tests, run as child processes:
 *
 *   node fake-server.js MODE SOCKET_PATH [OPTION_JSON]
 *
 * Modes (every one answers PrepareConf with a token first):
 * - `good`: Stop 200 with the request's id;
 * - `wrong-id`: Stop 200 with the id plus one;
 * - `wrong-action`: a Rewrite where the bench expects a Stop;
 * - `error-frame`: the error reply SERVICE_UNAVAILABLE;
 * - `truncate`: the header and half the payload of a correct reply, then closes the connection;
 * - `token-once`: CONF_TOKEN_NOT_FOUND for token 1 (as after a runner restart), good for the
 *   tokens of later PrepareConfs, so the generator must re-prepare and retry;
 * - `token-always`: CONF_TOKEN_NOT_FOUND for every call: the gateway gives up after 3 attempts;
 * - `stall`: good, but the event loop blocks for `stallMs` (default 200) once, on the first call
 *   that arrives `stallAfterMs` (default 600) after the first call: a GC-pause-like stall of
 *   every connection at once;
 * - `extra`: asks ExtraInfo var `route_id`, then the request body, checks the answers against
 *   `expectVar` / `expectBodyBytes`, and answers Stop 200, or Stop 500 if they do not match.
 *
 * Prints `ready` on stdout once listening. Stops on SIGTERM or when stdin closes.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import {
  decodeExtraInfoResp,
  encodeErrResp,
  encodeExtraInfoReq,
  encodeHttpReqCallResp,
  encodePrepareConfResp,
  readHttpReqCallReq,
} from '../../../src/protocol/codec.js';
import { ErrCode, RpcType } from '../../../src/protocol/constants.js';
import { FrameDecoder } from '../../../src/protocol/frame-decoder.js';

type Mode = 'good' | 'wrong-id' | 'wrong-action' | 'error-frame' | 'truncate' | 'token-once' | 'token-always' | 'stall' | 'extra';

const [mode, socketPath, optionJson] = process.argv.slice(2) as [Mode | undefined, string | undefined, string | undefined];

function stop(id: number, status = 200): Buffer {
  return encodeHttpReqCallResp({ id, action: { type: 'stop', status, headers: null, body: Buffer.from('fake') } });
}

function main(mode: Mode, path: string, options: Record<string, number | string>): void {
  const stallMs = Number(options.stallMs ?? 200);
  const stallAfterMs = Number(options.stallAfterMs ?? 600);
  let firstCallAt = 0;
  let stalled = false;
  let nextToken = 1;

  rmSync(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => {});
    /** `extra` mode: the call waiting for ExtraInfo answers. */
    let pending: { id: number; step: number; var?: string } | null = null;
    const decoder = new FrameDecoder((type, payload) => {
      if (type === RpcType.PrepareConf) {
        socket.write(encodePrepareConfResp(nextToken++));
        return;
      }
      if (type === RpcType.ExtraInfo && pending) {
        const { result } = decodeExtraInfoResp(payload);
        if (pending.step === 1) {
          pending.var = result === null ? '(absent)' : Buffer.from(result).toString('latin1');
          pending.step = 2;
          socket.write(encodeExtraInfoReq({ type: 'reqBody' }));
        } else {
          const ok = pending.var === String(options.expectVar) && (result?.length ?? 0) === Number(options.expectBodyBytes);
          socket.write(stop(pending.id, ok ? 200 : 500));
          pending = null;
        }
        return;
      }
      if (type !== RpcType.HttpReqCall) {
        socket.write(encodeErrResp(ErrCode.BadRequest));
        return;
      }
      const req = readHttpReqCallReq(payload);
      const now = performance.now();
      if (firstCallAt === 0) firstCallAt = now;
      switch (mode) {
        case 'good':
          socket.write(stop(req.id));
          break;
        case 'wrong-id':
          socket.write(stop((req.id + 1) >>> 0));
          break;
        case 'wrong-action':
          socket.write(encodeHttpReqCallResp({ id: req.id, action: { type: 'rewrite', path: '/x', headers: null, args: null, respHeaders: null, body: null } }));
          break;
        case 'error-frame':
          socket.write(encodeErrResp(ErrCode.ServiceUnavailable));
          break;
        case 'truncate': {
          const frame = stop(req.id);
          socket.end(frame.subarray(0, 4 + Math.floor((frame.length - 4) / 2)));
          break;
        }
        case 'token-once':
          socket.write(req.confToken === 1 ? encodeErrResp(ErrCode.ConfTokenNotFound) : stop(req.id));
          break;
        case 'token-always':
          socket.write(encodeErrResp(ErrCode.ConfTokenNotFound));
          break;
        case 'stall':
          if (!stalled && now - firstCallAt >= stallAfterMs) {
            stalled = true;
            // Blocks the whole process, as a long GC pause or a blocking plugin would.
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
          }
          socket.write(stop(req.id));
          break;
        case 'extra':
          pending = { id: req.id, step: 1 };
          socket.write(encodeExtraInfoReq({ type: 'var', name: 'route_id' }));
          break;
      }
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  server.listen(path, () => process.stdout.write('ready\n'));
  const close = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', close);
  process.stdin.on('end', close);
  process.stdin.resume();
}

// Without arguments (e.g. picked up by a test runner) this module does nothing.
if (mode !== undefined && socketPath !== undefined) main(mode, socketPath, optionJson ? (JSON.parse(optionJson) as Record<string, number | string>) : {});
