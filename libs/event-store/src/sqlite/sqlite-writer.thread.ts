import type { Worker } from 'node:worker_threads';
import type { SqliteDurability } from './sqlite-writer';
import type { WriterReply, WriterRequest, WriterThreadData } from './sqlite-writer.protocol';
import { startStoreWorker } from './store-worker';

export type WriterAnswer = WriterReply | { t: 'failed'; error: Error };

/**
 * The main thread's end of the writer thread: requests go out in order and each gets exactly one
 * answer, in the same order. If the thread dies, every request still waiting (and every later one)
 * is answered `failed`: its append may or may not have been committed, which an idempotent retry
 * (same event ids) settles.
 */
export class WriterThread {
  private readonly worker: Worker;
  private readonly waiting: Array<(answer: WriterAnswer) => void> = [];
  private failure: Error | undefined;
  private stopping = false;
  private readonly exited: Promise<void>;

  constructor(file: string, durability: SqliteDurability) {
    this.worker = startStoreWorker<WriterThreadData>('sqlite-writer.worker', { file, durability });
    // An idle writer does not keep the process alive (as an idle SQLite connection would not).
    this.worker.unref();
    this.worker.on('message', (reply: WriterReply) => {
      const answer = this.waiting.shift();
      // Closing: the process waits for the thread's exit (the connection closed), not only its last answer.
      if (this.waiting.length === 0 && !this.stopping) this.worker.unref();
      answer?.(reply);
    });
    this.worker.on('error', (error) => {
      this.failure ??= error;
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        if (!this.stopping || this.waiting.length > 0) {
          const cause = this.failure ? `: ${this.failure.message}` : ` (exit code ${code})`;
          this.failure = new Error(`the SQLite writer thread stopped${cause}; appends not yet answered may or may not be stored`);
        }
        this.failure ??= new Error('the SQLite writer thread is closed');
        for (const answer of this.waiting.splice(0)) answer({ t: 'failed', error: this.failure });
        resolve();
      });
    });
  }

  /**
   * Sends a request; `answer` is called once, from the message loop (or at once if the thread is
   * gone). Throws (and will not answer) when the request cannot be cloned.
   */
  send(request: WriterRequest, answer: (answer: WriterAnswer) => void): void {
    if (this.failure) {
      answer({ t: 'failed', error: this.failure });
      return;
    }
    // Cloned here: content the structured clone refuses throws before anything is waiting for an answer.
    this.worker.postMessage(request);
    if (this.waiting.length === 0) this.worker.ref();
    this.waiting.push(answer);
  }

  /** Closes the write connection after every request sent so far was answered. */
  async close(): Promise<void> {
    if (!this.failure && !this.stopping) {
      this.stopping = true;
      this.send({ t: 'close' }, () => undefined);
    }
    await this.exited;
  }

  /** Test seam: ends the thread abruptly, as a crash in it would. */
  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}
