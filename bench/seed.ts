/** Rows for seeding a large account straight into a metadata database (bench only). */
import { randomBytes } from 'node:crypto';
import type { Insertable, Kysely } from 'kysely';
import type { Database, ImagesTable } from '../src/store/meta/schema.js';

/** The i-th seeded image: two per second (the (uploaded_at, id) tie-break is exercised), 100 albums. */
export function seededImage(accountId: string, i: number): Insertable<ImagesTable> {
  const hex = randomBytes(16).toString('hex');
  return {
    account_id: accountId,
    id: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    filename: `photo-${i}.jpg`,
    creator: i % 10 === 0 ? `user-${i % 7}` : null,
    meta: JSON.stringify({ album: `album-${i % 100}`, index: i, tags: ['bench', i % 2 === 0 ? 'even' : 'odd'] }),
    require_signed: 0,
    uploaded_at: Date.UTC(2025, 0, 1) + Math.floor(i / 2) * 1000,
    draft: 0,
    blob_key: `${accountId}/${randomBytes(16).toString('hex')}`,
    content_type: 'image/jpeg',
    size: 100_000 + (i % 900_000),
    sha256: randomBytes(32).toString('hex'),
    width: 4000,
    height: 3266,
    frames: 1,
    version: 1,
  };
}

/** Inserts `count` images in one transaction and keeps the account's live-image count in step. */
export async function seedImages(db: Kysely<Database>, accountId: string, count: number): Promise<void> {
  const BATCH = 500; // 16 columns x 500 rows stays below every dialect's bound-parameter limit
  await db.transaction().execute(async (trx) => {
    for (let start = 0; start < count; start += BATCH) {
      const rows = Array.from({ length: Math.min(BATCH, count - start) }, (_, k) => seededImage(accountId, start + k));
      await trx.insertInto('images').values(rows).execute();
    }
    await trx.updateTable('accounts').set((eb) => ({ image_count: eb('image_count', '+', count) })).where('id', '=', accountId).execute();
  });
}
