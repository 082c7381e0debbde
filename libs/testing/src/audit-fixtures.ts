import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandTarget, decideFor, type DomainCommand } from '@clientele/domain';
import type { AppendResult, EventStore, JsonObject, NewEvent } from '@clientele/event-store';

/** A fresh folder for store files, and how to remove it. */
export function tempDir(prefix = 'clientele-audit-'): { dir: string; file(name: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, file: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A deterministic UUID-shaped id from a seed, so a retried command carries the same event ids. */
export function idFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Load, decide, append: the application's command path in miniature, so audit specs store the
 * events the real deciders produce (with transitions and causation) rather than hand-made ones.
 */
export async function runCommand(store: EventStore, commandId: string, command: DomainCommand): Promise<AppendResult | undefined> {
  const { streamId } = commandTarget(command);
  const history = await store.readStream(streamId);
  const decided = decideFor(command, history);
  if (decided.length === 0) return undefined;
  const events: NewEvent[] = decided.map((e, i) => ({
    id: idFrom(`${commandId}:${i}`),
    type: e.type,
    data: e.data as unknown as JsonObject,
    metadata: {
      occurredAt: e.data.occurredAt,
      schemaVersion: 1,
      commandId,
      causationId: i === 0 ? commandId : idFrom(`${commandId}:0`),
    },
  }));
  const last = history[history.length - 1];
  return store.appendToStream(streamId, events, { expectedRevision: last ? last.revision : 'no_stream' });
}

/** `n` small touchpoint events spread over `streams` customer streams, appended in groups. */
export async function appendTouchpoints(store: EventStore, n: number, streams = 20): Promise<void> {
  const pending: Promise<AppendResult>[] = [];
  for (let i = 1; i <= n; i++) {
    const customerId = `c${String(i % streams).padStart(3, '0')}`;
    pending.push(
      store.appendToStream(`customer-${customerId}`, [
        {
          id: idFrom(`touch-${i}`),
          type: 'TouchpointRecorded',
          data: { customerId, channel: 'email', direction: 'outbound', kind: 'newsletter', sequence: i, occurredAt: '2026-01-01T00:00:00.000Z' },
          metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 },
        },
      ]),
    );
  }
  await Promise.all(pending);
}

/** The user `nobody`, whose rights an auditor's process reading someone else's evidence has. */
const NOBODY = 65534;

/**
 * Runs `read` with no more rights than an auditor's process over files it does not own. Specs may
 * run as root, whom file permissions do not refuse: then the effective user and group are `nobody`
 * for the call, and root again after it (a process whose real user is root may switch back). Any
 * other user runs it as it is, and the permissions of what it reads bite already. The folders on the
 * way to what it reads must be open to others (chmod o+x).
 */
export async function asUnprivilegedReader<T>(read: () => Promise<T>): Promise<T> {
  if (process.getuid?.() !== 0 || !process.seteuid || !process.setegid) return read();
  process.setegid(NOBODY);
  process.seteuid(NOBODY);
  try {
    return await read();
  } finally {
    process.seteuid(0);
    process.setegid(0);
  }
}
