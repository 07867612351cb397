/**
 * S3 for tests: `PICTOR_TEST_S3_ENDPOINT` names an engine (scripts/swift-s3.sh starts OpenStack Swift's
 * s3api on loopback); each test server gets a bucket of its own.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** The suites of this run keep originals and renders in S3 (`PICTOR_TEST_STORAGE=s3`). */
export const STORAGE_ON_S3 = process.env.PICTOR_TEST_STORAGE === 's3';

/** Credentials of scripts/swift-s3.sh unless the run says otherwise. */
export function s3Env(bucket: string): Record<string, string> {
  const endpoint = process.env.PICTOR_TEST_S3_ENDPOINT;
  if (!endpoint) throw new Error('PICTOR_TEST_S3_ENDPOINT is not set (scripts/swift-s3.sh start)');
  return {
    PICTOR_STORAGE_URL: `s3://${bucket}/pictor`,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: process.env.PICTOR_TEST_S3_KEY ?? 'test:tester',
    AWS_SECRET_ACCESS_KEY: process.env.PICTOR_TEST_S3_SECRET ?? 'testing',
  };
}

export async function createTestBucket(): Promise<string> {
  const env = s3Env('unused');
  const client = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3 as string,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID as string, secretAccessKey: env.AWS_SECRET_ACCESS_KEY as string },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = `pictor-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}
