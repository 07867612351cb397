/**
 * Like `startTestServer`, but the server reads time from a clock the test controls (Unix ms), so
 * expiry can be tested without waiting. Passing the same `dataDir`, `accountId` and `token` again restarts a server on the same data.
 */
import { type TestServer, startTestServer } from './server.js';

export interface TestClock {
  /** Current time in Unix ms. */
  now(): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let current = start;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

export function startClockServer(clock: TestClock, env: Record<string, string> = {}): Promise<TestServer> {
  return startTestServer(env, { now: () => clock.now() });
}
