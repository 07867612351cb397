/** Stands in for the PostgreSQL project on a machine without PostgreSQL, so the run says what it skipped. */
import { it } from 'vitest';

it.skip('PostgreSQL suites: no PICTOR_TEST_DATABASE_URL and no PostgreSQL server binaries (apt-get install -y postgresql)', () => undefined);
