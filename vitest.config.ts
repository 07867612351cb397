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
  'test/store-contract.test.ts',
  'test/observability.test.ts',
  'test/batch.test.ts',
  'test/webhooks.test.ts',
];

/** The suites that run with PostgreSQL metadata and S3 objects together (the scale-out layout). */
const S3_SUITES = [
  'test/images-api.test.ts',
  'test/sdk-conformance.test.ts',
  'test/delivery.test.ts',
  'test/direct-upload.test.ts',
  'test/postgres.test.ts',
  'test/storage-contract.test.ts',
  'test/store-contract.test.ts',
  'test/multi-node.test.ts',
  'test/migrate-storage.test.ts',
];

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => fs.existsSync(`${dir}/${program}`));
}

/** An S3 engine is given (PICTOR_TEST_S3_ENDPOINT) or OpenStack Swift is installed to start one. */
function s3Available(): boolean {
  return Boolean(process.env.PICTOR_TEST_S3_ENDPOINT) || (onPath('swift-proxy-server') && onPath('memcached'));
}

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
  // expect.poll waits for what a server or a browser does in the background; 1 s is short on a loaded 2-core machine.
  expect: { poll: { timeout: 10_000 } },
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
          exclude: ['test/postgres.test.ts', 'test/multi-node.test.ts', 'test/migrate-storage.test.ts', 'test/postgres-unavailable.test.ts', 'test/s3-unavailable.test.ts'],
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
      postgresAvailable() && s3Available()
        ? {
            test: {
              ...common,
              name: 's3',
              include: S3_SUITES,
              env: { PICTOR_TEST_META: 'postgres', PICTOR_TEST_STORAGE: 's3' },
              globalSetup: ['test/setup/postgres-global.ts', 'test/setup/s3-global.ts'],
            },
          }
        : { test: { ...common, name: 's3', include: ['test/s3-unavailable.test.ts'] } },
    ],
  },
});
