/**
 * Like `startTestServer`, but the server reads time from a clock the test controls (Unix ms), so
 * expiry can be tested without waiting. The config is built exactly as `startTestServer` builds it;
 * passing the same `dataDir`, `accountId` and `token` again restarts a server on the same data.
 */
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { randomAccountId, type TestServer, tempDir } from './server.js';

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

export async function startClockServer(clock: TestClock, env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.PICTOR_DATA_DIR ?? tempDir();
  const accountId = env.PICTOR_BOOTSTRAP_ACCOUNT_ID ?? randomAccountId();
  const token = env.PICTOR_BOOTSTRAP_TOKEN ?? `test-token-${accountId}`;
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    PICTOR_LOG_LEVEL: 'warn',
    PICTOR_BOOTSTRAP_ACCOUNT_ID: accountId,
    PICTOR_BOOTSTRAP_TOKEN: token,
    ...env,
    PICTOR_DATA_DIR: dataDir,
  });
  const server = await startServer(config, { now: () => clock.now() });
  return {
    server,
    url: server.url,
    dataDir,
    accountId,
    token,
    imagesUrl: `${server.url}/client/v4/accounts/${accountId}/images`,
    auth: { authorization: `Bearer ${token}` },
    async stop() {
      await server.close();
    },
  };
}
