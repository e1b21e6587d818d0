import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BackoffOptions } from '@apigate/kernel';

/** One job as written to the spool: enough to put it back exactly where it was. */
export interface SpooledJob {
  v: 1;
  queue: string;
  id: string;
  /** The payload's JSON text (kept as text so it is restored byte for byte). */
  json: string;
  publishedAt: number;
  maxAttempts: number;
  attemptsMade: number;
  /** null: no priority (runs after every prioritised job). */
  priority: number | null;
  backoff?: BackoffOptions;
  /** A job running when the queue closed is written as waiting: its try did not finish. */
  state: 'waiting' | 'delayed' | 'failed';
  /** For delayed jobs: when it is due (epoch ms). */
  dueAt?: number;
  error?: string;
  failedAt?: number;
}

/** The remembered completed ids of a queue (they keep a republish with the same jobId a no-op). */
export interface SpooledCompleted {
  v: 1;
  queue: string;
  completed: string[];
}

export type SpoolLine = SpooledJob | SpooledCompleted;

const SUFFIX = '.jsonl';

/**
 * Writes one spool file for this process: `<dir>/jobs-<pid>-<random>.jsonl`, via a temporary file
 * and a rename, mode 0600 (payloads hold email addresses). One file per process, so two processes
 * closing at once never overwrite each other. Synchronous: it also runs from a process 'exit' hook.
 */
export function writeSpool(dir: string, lines: readonly SpoolLine[]): string | undefined {
  if (lines.length === 0) return undefined;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `jobs-${process.pid}-${randomUUID().slice(0, 8)}${SUFFIX}`);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/**
 * Takes every spool file in `dir` (each is renamed first, so two processes starting at once never
 * replay the same one), and returns their lines in file order, removing the files. Malformed
 * lines are counted, not thrown: one bad line must not lose the others.
 */
export function takeSpool(dir: string): { lines: SpoolLine[]; files: number; bad: number } {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith(SUFFIX))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], files: 0, bad: 0 };
    throw err;
  }
  const lines: SpoolLine[] = [];
  let bad = 0;
  let files = 0;
  for (const name of names) {
    const claimed = path.join(dir, `${name}.${process.pid}.taken`);
    try {
      renameSync(path.join(dir, name), claimed);
    } catch {
      continue; // another process took it
    }
    files++;
    for (const raw of readFileSync(claimed, 'utf8').split('\n')) {
      if (!raw.trim()) continue;
      try {
        const line = JSON.parse(raw) as SpoolLine;
        if (line?.v === 1 && typeof line.queue === 'string') lines.push(line);
        else bad++;
      } catch {
        bad++;
      }
    }
    rmSync(claimed, { force: true });
  }
  return { lines, files, bad };
}
