/** The same seeded PRNG the bench workload uses: reproducible "random" inputs, so a failure can be replayed. */
export { prng as seededRandom } from '../../src/bench/workload.js';
