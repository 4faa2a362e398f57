/**
 * Long fuzz run against a live runner: the gateway's own frames (the golden vectors, including the
 * ones its Lua FlatBuffers stack built), mutated at random, sent over the socket for minutes. The
 * runner must answer every frame with exactly one reply (an error reply is fine: BAD_REQUEST,
 * CONF_TOKEN_NOT_FOUND), keep the connection usable, and still serve a valid call at the end.
 * The test suite runs a short, in-process version of this (test/protocol); this is the long one.
 *
 *   npm run build:test && node .build/bench/fuzz.js [--seconds 120] [--seed 1]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { prng } from '../src/bench/workload.js';
import { startRunnerProcess } from '../src/bench/servers.js';
import {
  decodeHttpReqCallResp,
  decodePrepareConfResp,
  encodeExtraInfoResp,
  encodeHttpReqCallReq,
  encodePrepareConfReq,
} from '../src/protocol/codec.js';
import { RpcType } from '../src/protocol/constants.js';
import { FrameDecoder } from '../src/protocol/frame-decoder.js';
import { fieldPos, rootTable } from '../src/protocol/table-reader.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '120' }, seed: { type: 'string', default: '1' } } });
const seconds = Number(values.seconds);
const random = prng(Number(values.seed));
if (!(seconds > 0)) {
  process.stderr.write('fuzz: --seconds must be a positive number\n');
  process.exit(2);
}

/** Every golden frame (a runner must answer whatever arrives, even frames only it should send). */
function gatewayFrames(): Buffer[] {
  const dirs = ['../../test/fixtures/vectors/', '../../test/fixtures/vectors/gateway_lua/'].map((d) => new URL(d, import.meta.url));
  const frames: Buffer[] = [];
  for (const dir of dirs) {
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.hex'))) {
      frames.push(Buffer.from(readFileSync(new URL(name, dir), 'utf8').trim(), 'hex'));
    }
  }
  return frames;
}

/** Calls carry a token this runner issued, so mutations reach the chain, not just the token check. */
function withToken(frame: Buffer, token: number): Buffer {
  const slot = frame[0] === RpcType.HttpReqCall ? 6 : frame[0] === RpcType.HttpRespCall ? 3 : -1;
  if (slot < 0) return frame;
  const out = Buffer.from(frame);
  const payload = out.subarray(4);
  const pos = fieldPos(payload, rootTable(payload), slot);
  if (pos > 0) payload.writeUInt32LE(token, pos);
  return out;
}

/** A mutated copy: flipped bytes, a truncated or extended payload (header length kept consistent), or a new type. */
function mutate(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  const payload = out.subarray(4);
  const kind = Math.floor(random() * 4);
  if (kind === 0 || payload.length === 0) {
    for (let i = 1 + Math.floor(random() * 8); i > 0; i--) payload[Math.floor(random() * payload.length)] = Math.floor(random() * 256);
    return out;
  }
  if (kind === 1) {
    const keep = Math.floor(random() * payload.length);
    const cut = Buffer.concat([out.subarray(0, 4), payload.subarray(0, keep)]);
    cut.writeUIntBE(keep, 1, 3);
    return cut;
  }
  if (kind === 2) {
    const extra = Buffer.alloc(1 + Math.floor(random() * 64), Math.floor(random() * 256));
    const longer = Buffer.concat([out, extra]);
    longer.writeUIntBE(longer.length - 4, 1, 3);
    return longer;
  }
  out[0] = Math.floor(random() * 8);
  return out;
}

const runner = await startRunnerProcess({ cpus: null, fixtures: false, args: ['--threads', '1'] });
const socket: Socket = connect(runner.socketPath);
await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
let waiting: ((type: number, payload: Buffer) => void) | null = null;
const decoder = new FrameDecoder((type, payload) => {
  const w = waiting;
  waiting = null;
  w?.(type, payload);
});
socket.on('data', (chunk: Buffer) => decoder.push(chunk));

function exchange(frame: Buffer): Promise<[number, Buffer]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply within 2 s')), 2000);
    waiting = (type, payload) => {
      clearTimeout(timer);
      resolve([type, payload]);
    };
    socket.write(frame);
  });
}

const NO_RESULT = encodeExtraInfoResp({ result: null });
// One conf per phase whose plugins read what a mutation can break (headers, args, path, bodies).
const [, preparedReq] = await exchange(
  encodePrepareConfReq({ conf: [{ name: 'header-rewrite', value: '{"set":{"x-a":"1"},"remove":["x-req"]}' }, { name: 'say', value: '{"body":"hi"}' }], key: 'fuzz#req' }),
);
const [, preparedResp] = await exchange(
  encodePrepareConfReq({ conf: [{ name: 'response-rewrite', value: '{"filters":[{"regex":"a","scope":"global","replace":"b"}]}' }], key: 'fuzz#resp' }),
);
const reqToken = decodePrepareConfResp(preparedReq).confToken;
const respToken = decodePrepareConfResp(preparedResp).confToken;
const frames = gatewayFrames().map((f) => withToken(f, f[0] === RpcType.HttpRespCall ? respToken : reqToken));
const replies = new Map<number, number>();
const deadline = performance.now() + seconds * 1000;
let sent = 0;
let failure: string | null = null;
while (performance.now() < deadline && failure === null) {
  const frame = mutate(frames[Math.floor(random() * frames.length)]);
  try {
    let [type] = await exchange(frame);
    // A mutated call that reached a plugin may ask for ExtraInfo: answer with nothing, as for an unknown var.
    for (let rounds = 0; type === RpcType.ExtraInfo && rounds < 10; rounds++) [type] = await exchange(NO_RESULT);
    replies.set(type, (replies.get(type) ?? 0) + 1);
    sent++;
  } catch (err) {
    failure = `frame ${sent + 1} (${frame.subarray(0, 16).toString('hex')}...): ${(err as Error).message}`;
  }
}

// The connection and the runner must still serve a well-formed call.
let healthy = false;
if (failure === null) {
  const [, prepared] = await exchange(encodePrepareConfReq({ conf: [{ name: 'say', value: '{"body":"ok"}' }], key: 'fuzz#end' }));
  const token = decodePrepareConfResp(prepared).confToken;
  const [type, reply] = await exchange(encodeHttpReqCallReq({ id: 7, srcIp: Buffer.from([127, 0, 0, 1]), method: 0, path: '/', args: [], headers: [], confToken: token }));
  healthy = type === RpcType.HttpReqCall && decodeHttpReqCallResp(reply).action?.type === 'stop';
}
socket.destroy();
const alive = runner.exitStatus() === null;
await runner.stop();

const summary = [...replies].sort(([a], [b]) => a - b).map(([t, n]) => `type ${t}: ${n}`).join(', ');
process.stdout.write(
  `fuzz ${seconds} s, seed ${values.seed}: ${sent} mutated frames answered (${summary}); ` +
    `${failure ?? 'every frame answered'}; runner ${alive ? 'alive' : 'DIED'}, valid call afterwards ${healthy ? 'ok' : 'FAILED'}\n`,
);
process.exit(failure === null && alive && healthy ? 0 : 1);
