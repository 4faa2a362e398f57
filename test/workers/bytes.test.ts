import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { bytesEqual, formatIp, latin1, toBuffer, toBytes, utf8 } from '../../src/workers/bytes.js';

function ipv6(...groups: number[]): Uint8Array {
  assert.equal(groups.length, 8);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

test('formatIp: 4 bytes are dotted IPv4', () => {
  assert.equal(formatIp(Uint8Array.of(127, 0, 0, 1)), '127.0.0.1');
  assert.equal(formatIp(Uint8Array.of(255, 255, 0, 10)), '255.255.0.10');
  assert.equal(formatIp(Uint8Array.of(0, 0, 0, 0)), '0.0.0.0');
});

test('formatIp: 16 bytes are RFC 5952 IPv6 (lower case, no leading zeros, longest zero run compressed)', () => {
  const cases: Array<[Uint8Array, string]> = [
    [ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), '2001:db8::1'],
    [ipv6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [ipv6(0, 0, 0, 0, 0, 0, 0, 0), '::'],
    [ipv6(1, 0, 0, 0, 0, 0, 0, 0), '1::'],
    // Two runs of equal length: the first is compressed.
    [ipv6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), '2001:db8::1:0:0:1'],
    // The longer run wins even when it comes second.
    [ipv6(0x2001, 0, 0, 1, 0, 0, 0, 1), '2001:0:0:1::1'],
    // A single zero group is never compressed (RFC 5952 §4.2.2).
    [ipv6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1'],
    [ipv6(0x2001, 0xdb8, 0xabcd, 0x12, 0xffff, 0xa, 0xb, 0xc), '2001:db8:abcd:12:ffff:a:b:c'],
    [ipv6(0xfe80, 0, 0, 0, 0x1ff, 0xfe23, 0x4567, 0x890a), 'fe80::1ff:fe23:4567:890a'],
  ];
  for (const [bytes, expected] of cases) assert.equal(formatIp(bytes), expected, expected);
});

test('formatIp: an IPv4-mapped address uses the dotted tail, as nginx $remote_addr and RFC 5952 §5 do', () => {
  // Guards a bug found here (fixed since): it gave '::ffff:102:304', while nginx's ngx_inet6_ntop
  // prints '::ffff:1.2.3.4', so srcIp disagreed with var('remote_addr') on a dual-stack listener.
  assert.equal(formatIp(ipv6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)), '::ffff:1.2.3.4');
  assert.equal(formatIp(ipv6(0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x0001)), '::ffff:192.168.0.1');
  // Not mapped: ffff elsewhere, or a non-zero prefix, stays hexadecimal.
  assert.equal(formatIp(ipv6(0, 0, 0, 0, 1, 0xffff, 0x0102, 0x0304)), '::1:ffff:102:304');
  assert.equal(formatIp(ipv6(0, 0, 0, 0, 0, 0xfffe, 0x0102, 0x0304)), '::fffe:102:304');
});

test('formatIp: other lengths are the bytes as Latin-1 text (a Unix-socket client is "unix:")', () => {
  assert.equal(formatIp(Buffer.from('unix:')), 'unix:');
  assert.equal(formatIp(Uint8Array.of(0x61, 0xff)), 'a\u00ff');
  assert.equal(formatIp(new Uint8Array(0)), '');
  assert.equal(formatIp(Uint8Array.of(1, 2, 3, 4, 5)), '\x01\x02\x03\x04\x05');
});

test('formatIp: null is the empty string', () => {
  assert.equal(formatIp(null), '');
});

test('formatIp reads a view at a non-zero offset correctly', () => {
  const backing = Uint8Array.of(9, 9, 10, 0, 0, 1, 9);
  assert.equal(formatIp(backing.subarray(2, 6)), '10.0.0.1');
});

test('utf8/latin1/toBytes/toBuffer/bytesEqual', () => {
  const bytes = Uint8Array.of(0x68, 0xc3, 0xa9, 0xff);
  assert.equal(utf8(bytes.subarray(0, 3)), 'hé');
  assert.equal(latin1(bytes), 'h\u00c3\u00a9\u00ff');
  assert.deepEqual([...toBytes('é')], [0xc3, 0xa9]);
  assert.equal(toBytes(bytes), bytes, 'bytes pass through without a copy');
  assert.ok(Buffer.isBuffer(toBuffer(bytes)));
  assert.deepEqual([...toBuffer(bytes)], [...bytes]);
  assert.ok(bytesEqual(Buffer.from('ab'), Uint8Array.of(0x61, 0x62)));
  assert.ok(!bytesEqual(Buffer.from('ab'), Buffer.from('abc')));
  assert.ok(!bytesEqual(Buffer.from('ab'), Buffer.from('ac')));
});
