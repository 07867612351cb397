/**
 * The admission rules on their own: the cost-weighted render pool and the bound on uploads in progress.
 * Jobs are promises the test resolves by hand, so every assertion is about order, never about time.
 */
import { describe, expect, it } from 'vitest';
import { UploadGate } from '../src/domain/upload-gate.js';
import { PictorError } from '../src/errors.js';
import { decodeCost, renderCost } from '../src/imaging/cost.js';
import { PoolFullError, RenderPool } from '../src/imaging/render-pool.js';

const HEAVY = 100;
const LIGHT = 1;

function pool(overrides: Partial<ConstructorParameters<typeof RenderPool>[0]> = {}): RenderPool {
  return new RenderPool({ slots: 2, heavySlots: 1, heavyCost: HEAVY, maxQueue: 10, maxHeavyQueue: 2, maxWaitMs: 60_000, ...overrides });
}

/** A job that runs until `finish()` is called; `started` tells whether the pool let it in. */
function job(): { started: boolean; finish: () => void; task: () => Promise<void> } {
  let finish = (): void => undefined;
  const handle = {
    started: false,
    finish: () => finish(),
    task: () =>
      new Promise<void>((resolve) => {
        handle.started = true;
        finish = resolve;
      }),
  };
  return handle;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('render pool', () => {
  it('a heavy job leaves a slot for light work: a thumbnail starts while big renders run and wait', async () => {
    const p = pool();
    const [big1, big2, thumb] = [job(), job(), job()];
    const runs = [p.run(HEAVY, big1.task), p.run(HEAVY, big2.task)];
    await tick();
    expect([big1.started, big2.started]).toEqual([true, false]);
    const thumbRun = p.run(LIGHT, thumb.task);
    await tick();
    expect(thumb.started).toBe(true);
    thumb.finish();
    await thumbRun;
    big1.finish();
    await tick();
    expect(big2.started).toBe(true);
    big2.finish();
    await Promise.all(runs);
    expect(p.stats).toEqual({ running: 0, runningHeavy: 0, queued: 0, queuedHeavy: 0 });
  });

  it('light jobs leave the queue before heavy ones that waited longer', async () => {
    const p = pool({ slots: 1, heavySlots: 1 });
    const [first, heavy, light] = [job(), job(), job()];
    const runs = [p.run(LIGHT, first.task), p.run(HEAVY, heavy.task), p.run(LIGHT, light.task)];
    await tick();
    first.finish();
    await tick();
    expect([light.started, heavy.started]).toEqual([true, false]);
    light.finish();
    await tick();
    expect(heavy.started).toBe(true);
    heavy.finish();
    await Promise.all(runs);
  });

  it('refuses at once when the heavy queue or the whole queue is full', async () => {
    const p = pool({ maxQueue: 3, maxHeavyQueue: 1 });
    const running = [job(), job()];
    const runs = [p.run(HEAVY, running[0]!.task), p.run(LIGHT, running[1]!.task)];
    const queuedHeavy = job();
    const queued = p.run(HEAVY, queuedHeavy.task);
    await expect(p.run(HEAVY, job().task)).rejects.toEqual(new PoolFullError('queue'));
    const lights = [job(), job()];
    const lightRuns = lights.map((j) => p.run(LIGHT, j.task));
    await expect(p.run(LIGHT, job().task)).rejects.toBeInstanceOf(PoolFullError);
    running.forEach((j) => j.finish());
    await tick();
    lights.forEach((j) => j.finish());
    await Promise.all(lightRuns);
    await tick();
    queuedHeavy.finish();
    await Promise.all([...runs, queued]);
  });

  it('a job that waits longer than maxWaitMs is refused', async () => {
    const p = pool({ slots: 1, maxWaitMs: 20 });
    const holder = job();
    const held = p.run(LIGHT, holder.task);
    await expect(p.run(LIGHT, job().task)).rejects.toEqual(new PoolFullError('wait'));
    holder.finish();
    await held;
    expect(p.stats.queued).toBe(0);
  });
});

describe('render cost', () => {
  const photo = { width: 4000, height: 3266, frames: 1, contentType: 'image/jpeg' };

  it('counts JPEG shrink-on-load: a thumbnail of a 13 MP photo decodes an eighth of each side', () => {
    expect(decodeCost(photo, { width: 77, height: 63 })).toBe(Math.ceil((4000 * 3266) / 64));
    expect(decodeCost({ ...photo, contentType: 'image/png' }, { width: 77, height: 63 })).toBe(4000 * 3266);
  });

  it('a 100 MP output is far heavier than a thumbnail', () => {
    const big = renderCost(photo, { width: 11999, height: 8333, resize: { width: 11999, height: 8333 } }, false);
    const small = renderCost(photo, { width: 77, height: 63, resize: { width: 77, height: 63 } }, false);
    expect(big).toBeGreaterThan(100_000_000);
    expect(small).toBeLessThan(300_000);
  });
});

describe('upload gate', () => {
  it('admits up to the bound, hands a freed place to the next waiter, refuses after the wait', async () => {
    const gate = new UploadGate({ maxInProgress: 1, maxWaiting: 1, maxWaitMs: 30 });
    const leave = await gate.enter();
    const waiting = gate.enter();
    const refused = gate.enter().catch((error: unknown) => error);
    expect(await refused).toBeInstanceOf(PictorError);
    leave();
    const leaveSecond = await waiting;
    expect(gate.count).toBe(1);
    const timedOut = await gate.enter().catch((error: unknown) => error);
    expect((timedOut as PictorError).code).toBe(5503);
    expect((timedOut as PictorError).retryAfter).toBe(1);
    leaveSecond();
    leaveSecond();
    expect(gate.count).toBe(0);
  });
});
