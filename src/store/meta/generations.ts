/**
 * Change counters that let callers keep what they derived from the store exactly as long as it holds.
 * Scoped, so one upload does not throw away everything: an image's counter moves when that image is
 * written, an account's when its settings, variants or signing keys are, and `all` when the store
 * cannot say what changed (a lost change feed, a forgotten image counter).
 *
 * Writes by this process bump the counters at once; on a shared database the other processes' writes
 * arrive through a change feed (PostgreSQL LISTEN/NOTIFY, see postgres.ts). While that feed is down,
 * nothing is vouched for: every read gets a new value.
 */
import { LRUCache } from 'lru-cache';

/** Image counters remembered; forgetting one bumps `all`, so nothing stale can match a reset counter. */
const IMAGE_COUNTERS = 100_000;

export class Generations {
  private all = 0;
  private readonly accounts = new Map<string, number>();
  private readonly images: LRUCache<string, number>;
  /** False while changes by other processes could go unseen. */
  private trusted: boolean;

  constructor(options: { sharedByProcesses: boolean }) {
    this.trusted = !options.sharedByProcesses;
    this.images = new LRUCache<string, number>({
      max: IMAGE_COUNTERS,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.all += 1;
      },
    });
  }

  /** The value for what depends on this account and image. */
  of(accountId: string, imageId: string): number {
    if (!this.trusted) this.all += 1;
    return this.all + (this.accounts.get(accountId) ?? 0) + (this.images.get(imageKey(accountId, imageId)) ?? 0);
  }

  bumpImage(accountId: string, imageId: string): void {
    const key = imageKey(accountId, imageId);
    this.images.set(key, (this.images.get(key) ?? 0) + 1);
  }

  bumpAccount(accountId: string): void {
    this.accounts.set(accountId, (this.accounts.get(accountId) ?? 0) + 1);
  }

  bumpAll(): void {
    this.all += 1;
  }

  /** The change feed is up (true) or was lost (false); either way what came before is suspect. */
  setTrusted(trusted: boolean): void {
    this.trusted = trusted;
    this.all += 1;
  }
}

function imageKey(accountId: string, imageId: string): string {
  return `${accountId}\n${imageId}`;
}
