/** Stands in for the S3 project on a machine without an S3 engine, so the run says what it skipped. */
import { it } from 'vitest';

it.skip('PostgreSQL + S3 suites: no PICTOR_TEST_S3_ENDPOINT and no OpenStack Swift (scripts/swift-s3.sh installs and starts it)', () => undefined);
