/**
 * A Uint8Array stand-in that throws on any index read outside its bounds.
 *
 * A plain typed array answers an out-of-range index with `undefined`, which the reader's
 * bit arithmetic turns into 0: a missing bounds check would then go unnoticed whenever a later
 * check happens to reject the garbage. Decoding through this proxy makes "never reads outside
 * the payload" observable.
 */
export class OutOfBoundsRead extends Error {}

const INDEX = /^-?\d+$/;

export function guardedBytes(bytes: Uint8Array): Uint8Array {
  return new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && INDEX.test(key)) {
        const index = Number(key);
        if (index < 0 || index >= target.length) throw new OutOfBoundsRead(`read at ${index} of ${target.length}`);
        return target[index];
      }
      const value: unknown = Reflect.get(target, key, target);
      // Typed array methods (subarray, ...) need the real array as `this`.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
