/**
 * Global setup of the `s3` test project: uses PICTOR_TEST_S3_ENDPOINT when given, otherwise starts
 * OpenStack Swift's s3api on loopback with scripts/swift-s3.sh for the run and stops it afterwards.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): (() => void) | undefined {
  if (process.env.PICTOR_TEST_S3_ENDPOINT) return undefined;
  const script = path.resolve(import.meta.dirname, '../../scripts/swift-s3.sh');
  const dir = `/tmp/pictor-swift-test-${process.pid}`;
  const port = String(20000 + Math.floor(Math.random() * 20000));
  execFileSync('bash', [script, 'start', dir], { env: { ...process.env, S3_PORT: port }, stdio: 'ignore' });
  process.env.PICTOR_TEST_S3_ENDPOINT = `http://127.0.0.1:${port}`;
  return () => {
    execFileSync('bash', [script, 'stop', dir], { stdio: 'ignore' });
  };
}
