import type { Connection, Submittable } from 'pg';

/** The part of pg's connection a COPY FROM STDIN speaks through (pg types declare only `query`). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/**
 * `COPY … FROM STDIN` on one pg client, fed while it runs: `write` sends text-format lines as soon
 * as they are written (lines written before the server is ready wait here), `end` finishes it, and
 * `done` settles when the server has answered. The server parses each line straight into the
 * table's column types, with none of the statement and JSON-record work of an INSERT, and it reads
 * what was sent while the writer prepares the next lines.
 *
 * A pg "submittable" (the interface pg-cursor and pg-query-stream use): pass it to `client.query`.
 * After a server error the COPY is over: further writes are dropped here, and the server would drop
 * them too. `fail` aborts it from this side (nothing it received is kept); a COPY must always be
 * ended or failed, or the client waits for it for ever.
 */
export class CopyIn implements Submittable {
  readonly done: Promise<void>;
  private connection: CopyConnection | undefined;
  private readonly waiting: Buffer[] = [];
  private ending: { fail?: string } | undefined;
  private settled = false;
  private resolve!: () => void;
  private reject!: (error: unknown) => void;

  constructor(private readonly text: string) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // a failure is read from `done` when the writer awaits it; until then it must not count as unhandled
    this.done.catch(() => undefined);
  }

  /** True once the server answered (or the connection failed): writing more is pointless. */
  get finished(): boolean {
    return this.settled;
  }

  write(lines: string): void {
    if (this.settled || this.ending) return;
    const chunk = Buffer.from(lines, 'utf8');
    if (this.connection) this.connection.sendCopyFromChunk(chunk);
    else this.waiting.push(chunk);
  }

  end(): void {
    this.finish({});
  }

  fail(reason: string): void {
    this.finish({ fail: reason });
  }

  // ---- called by pg's client ----

  submit(connection: Connection): void {
    (connection as unknown as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: Connection): void {
    const copy = connection as unknown as CopyConnection;
    this.connection = copy;
    for (const chunk of this.waiting.splice(0)) copy.sendCopyFromChunk(chunk);
    if (this.ending) this.sendEnd(this.ending);
  }

  handleError(error: unknown): void {
    this.settle(error);
  }

  handleReadyForQuery(): void {
    this.settle(undefined);
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  private finish(ending: { fail?: string }): void {
    if (this.settled || this.ending) return;
    this.ending = ending;
    if (this.connection) this.sendEnd(ending);
  }

  private sendEnd(ending: { fail?: string }): void {
    if (ending.fail === undefined) this.connection!.endCopyFrom();
    else this.connection!.sendCopyFail(ending.fail);
  }

  private settle(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (error === undefined) this.resolve();
    else this.reject(error);
  }
}
