/**
 * How long a test waits for an event (a log line, a thread, a reply, a process exit) before it
 * fails. Only a bound that turns a hang into a clear message: it is never what a test measures, so
 * it is generous, as a child process or a worker thread can take seconds to start on a loaded
 * shared machine. (Speed is measured in bench/, never asserted in `npm test`.)
 */
export const EVENT_WAIT_MS = 30_000;
