/**
 * Runs the real `pictor serve` command in a child process (`node --import tsx src/cli/main.ts serve`),
 * so a test can SIGKILL it mid-request and start another process on the same data dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');
const LISTENING = /Server listening at (http:\/\/\S+?)"/;

export interface ChildServer {
  child: ChildProcess;
  pid: number;
  url: string;
  /** Resolves when the process has exited (and has been reaped, so its pid is really gone). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends `signal` and waits for the exit. A no-op if the process has already exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Every child started here and not yet seen to exit, with a way to wait for its exit. */
const running = new Map<ChildProcess, Promise<unknown>>();

export interface ChildServerOptions {
  dataDir: string;
  accountId: string;
  token: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** What to run instead of `node --import tsx src/cli/main.ts serve` (e.g. `sh scripts/start.sh`). */
  command?: [string, ...string[]];
}

export function spawnServer(options: ChildServerOptions): Promise<ChildServer> {
  const [program, ...args] = options.command ?? [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'serve'];
  const child = spawn(program, args, {
    cwd: PROJECT_ROOT,
    env: {
      // The outer environment minus any Pictor setting, so the child sees only what the test gives it.
      ...Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.startsWith('PICTOR_') && name !== 'PORT' && name !== 'HOST'),
      ),
      HOST: '127.0.0.1',
      PORT: '0',
      PICTOR_LOG_LEVEL: 'info',
      PICTOR_DATA_DIR: options.dataDir,
      PICTOR_BOOTSTRAP_ACCOUNT_ID: options.accountId,
      PICTOR_BOOTSTRAP_TOKEN: options.token,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let exitedFlag = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      running.delete(child);
      resolve({ code, signal });
    });
  });
  running.set(child, exited);

  return new Promise<ChildServer>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      fail(new Error(`server did not start within ${options.startTimeoutMs ?? 20_000} ms:\n${log}`));
    }, options.startTimeoutMs ?? 20_000);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exitedFlag) child.kill('SIGKILL');
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      log += chunk.toString('utf8');
      if (settled) return;
      const match = LISTENING.exec(log);
      if (!match?.[1] || child.pid === undefined) return;
      settled = true;
      clearTimeout(timer);
      const server: ChildServer = {
        child,
        pid: child.pid,
        url: match[1],
        exited,
        output: () => log,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (!exitedFlag) child.kill(signal);
          await exited;
        },
      };
      resolve(server);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      if (child.pid === undefined) running.delete(child); // never started: no 'exit' will come
      fail(error);
    });
    void exited.then(({ code, signal }) => fail(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${log}`)));
  });
}

/** SIGKILLs every child this module started that is still running (for afterAll). */
export async function killAllChildServers(): Promise<void> {
  const waits = [...running].map(([child, exited]) => {
    child.kill('SIGKILL');
    return exited;
  });
  await Promise.all(waits);
}
