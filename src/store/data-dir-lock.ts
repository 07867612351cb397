/**
 * One server per embedded data dir: a second one would sweep the first one's in-flight uploads and
 * race it on SQLite. The lock is a file holding the owner's pid; a lock whose process is gone (a crash,
 * kill -9) is taken over. CLI commands do not take it: they only touch the metadata database.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A killed process can linger as a zombie until its parent reaps it; it holds nothing any more. */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** The pid of a live server holding the data dir, if any (checked without taking the lock). */
export function dataDirOwner(dataDir: string): number | undefined {
  try {
    const owner = Number(fs.readFileSync(path.join(dataDir, 'pictor.pid'), 'utf8').trim());
    return Number.isInteger(owner) && owner > 0 && processAlive(owner) ? owner : undefined;
  } catch {
    return undefined;
  }
}

export function acquireDataDirLock(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, 'pictor.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new Error(`The data dir ${dataDir} is in use by another Pictor server (pid ${owner})`);
      }
      fs.rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`Could not lock the data dir ${dataDir}`);
}
