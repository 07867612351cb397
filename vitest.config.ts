import fs from 'node:fs';
import { defineConfig } from 'vitest/config';

/** The HTTP suites that also run with metadata on PostgreSQL (each server gets a database of its own). */
const POSTGRES_SUITES = [
  'test/images-api.test.ts',
  'test/sdk-conformance.test.ts',
  'test/auth.test.ts',
  'test/delivery.test.ts',
  'test/direct-upload.test.ts',
  'test/variants-keys-config.test.ts',
  'test/upload-validation.test.ts',
  'test/hostile-input.test.ts',
  'test/hostile-traffic.test.ts',
  'test/postgres.test.ts',
];

/** PostgreSQL is given (PICTOR_TEST_DATABASE_URL) or can be started here (its server binaries are installed). */
function postgresAvailable(): boolean {
  if (process.env.PICTOR_TEST_DATABASE_URL) return true;
  const root = '/usr/lib/postgresql';
  return fs.existsSync(root) && fs.readdirSync(root).some((version) => fs.existsSync(`${root}/${version}/bin/initdb`));
}

const common = {
  // Integration tests start real servers and child processes; give them room on a 2-core machine.
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...common,
          name: 'embedded',
          include: ['test/**/*.test.ts'],
          exclude: ['test/postgres.test.ts', 'test/postgres-unavailable.test.ts'],
        },
      },
      postgresAvailable()
        ? {
            test: {
              ...common,
              name: 'postgres',
              include: POSTGRES_SUITES,
              env: { PICTOR_TEST_META: 'postgres' },
              globalSetup: ['test/setup/postgres-global.ts'],
            },
          }
        : { test: { ...common, name: 'postgres', include: ['test/postgres-unavailable.test.ts'] } },
    ],
  },
});
