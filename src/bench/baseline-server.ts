/**
 * The socket floor: a minimal Node server that answers every call with a canned frame, as in
 * PERF-NOTES' baseline (net server, frame header parse, canned reply). It decodes nothing but the
 * call id, which it copies into the canned reply so that the load generator's checks pass: a Stop
 * 200 for an HTTPReqCall, an unchanged HTTPRespCall reply, token 1 for a PrepareConf, and
 * BAD_REQUEST for anything else. No plugin, no ExtraInfo, no conf cache: whatever a runner costs
 * above this is its own work.
 *
 * `node baseline-server.js --listen /path.sock` runs it standalone; the bench harness starts it
 * itself (pinned like the runner) so that every report carries the ratio to this floor.
 */
import { realpathSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeErrResp, encodeHttpReqCallResp, encodeHttpRespCallResp, encodePrepareConfResp } from '../protocol/codec.js';
import { ErrCode, HEADER_BYTES, RpcType } from '../protocol/constants.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { fieldPos, readU32, rootTable } from '../protocol/table-reader.js';

const SENTINEL_ID = 0x7ead_beef;

/** A canned reply and the frame offset of its uint32 id. */
function canned(frame: Buffer): { frame: Buffer; idPos: number } {
  const payload = frame.subarray(HEADER_BYTES);
  const idPos = HEADER_BYTES + fieldPos(payload, rootTable(payload), 0);
  if (frame.readUInt32LE(idPos) !== SENTINEL_ID) throw new Error('canned reply: id field not found');
  return { frame, idPos };
}

const STOP = canned(encodeHttpReqCallResp({ id: SENTINEL_ID, action: { type: 'stop', status: 200, headers: null, body: Buffer.from('hello') } }));
const RESP = canned(encodeHttpRespCallResp({ id: SENTINEL_ID, status: 0, headers: null, body: null }));
const PREPARED = encodePrepareConfResp(1);
const BAD_REQUEST = encodeErrResp(ErrCode.BadRequest);

function reply(template: { frame: Buffer; idPos: number }, payload: Buffer): Buffer {
  const out = Buffer.from(template.frame);
  out.writeUInt32LE(readU32(payload, rootTable(payload), 0, 0), template.idPos);
  return out;
}

export function startBaselineServer(socketPath: string): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const decoder = new FrameDecoder((type, payload) => {
      try {
        if (type === RpcType.HttpReqCall) socket.write(reply(STOP, payload));
        else if (type === RpcType.HttpRespCall) socket.write(reply(RESP, payload));
        else if (type === RpcType.PrepareConf) socket.write(PREPARED);
        else socket.write(BAD_REQUEST);
      } catch {
        socket.write(BAD_REQUEST);
      }
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

export const BASELINE_MODULE = fileURLToPath(import.meta.url);

function isMainModule(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(BASELINE_MODULE);
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const i = process.argv.indexOf('--listen');
  const path = i > 0 ? process.argv[i + 1]?.replace(/^unix:/, '') : undefined;
  if (!path) {
    process.stderr.write('usage: node baseline-server.js --listen /path/to.sock\n');
    process.exit(2);
  }
  startBaselineServer(path).then(
    (server) => {
      process.stderr.write(`baseline server listening on unix:${path}\n`);
      const stop = (): void => {
        server.close();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // Started by the harness: do not outlive it if it dies without stopping us.
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid !== parent) stop();
      }, 500).unref();
    },
    (err: Error) => {
      process.stderr.write(`baseline server: ${err.message}\n`);
      process.exit(1);
    },
  );
}
