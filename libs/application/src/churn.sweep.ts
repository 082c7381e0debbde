import { Inject, Injectable } from '@nestjs/common';
import { businessTime, DomainError, EventTypes, type ChurnIfInactive } from '@clientele/domain';
import { businessTimeOutOfRange } from '@clientele/contracts';
import type { EventStore } from '@clientele/event-store';
import { CommandValidationError } from './application.errors';
import type { CheckpointStore } from './checkpoint.store';
import { CHECKPOINT_STORE, CLIENTELE_OPTIONS, EVENT_STORE } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import { CommandService } from './command.service';
import { describeFailure, isTemporary } from './command-result';

export interface SweepReport {
  asOf: string;
  customers: number;
  churned: number;
  /** customers the decider would not judge (an id that is not a customer's); an erased customer is judged like any other */
  refused: number;
  /**
   * customers not judged this time because their stream kept changing while the sweep decided,
   * also on a second try at the end of their page; running the same sweep again judges them
   */
  conflicts: number;
}

const PAGE = 1000;

/**
 * Sends ChurnIfInactive as of a business date to every registered customer; the decider judges each.
 * Command ids are `churn:<asOf>:<customerId>`, so running the same sweep twice records nothing new.
 * A customer whose stream kept changing (the command path's retries spent: other commands for them
 * were being stored at the same time) is tried once more at the end of the page; one still
 * conflicting is counted under `conflicts`, not `refused`, since nobody judged them.
 *
 * The event-store port cannot list streams (EventStoreDB and Kafka-fed stores would not answer it
 * cheaply), so the sweep keeps its own customer index: before each sweep it reads the global log
 * from where the last one stopped and records every ProspectRegistered. The first sweep reads
 * everything once; later ones read only what is new.
 */
@Injectable()
export class ChurnSweep {
  static readonly indexCheckpoint = 'customer-index';
  private indexing: Promise<void> | undefined;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CHECKPOINT_STORE) private readonly checkpoints: CheckpointStore,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
    private readonly commands: CommandService,
  ) {}

  /** Brings the customer index up to the head of the log (one reader at a time). */
  async indexCustomers(): Promise<void> {
    this.indexing ??= this.readRegistrations().finally(() => {
      this.indexing = undefined;
    });
    return this.indexing;
  }

  private async readRegistrations(): Promise<void> {
    let after = await this.checkpoints.load(ChurnSweep.indexCheckpoint);
    for (;;) {
      const page = await this.store.readAll({ afterPosition: after, maxCount: PAGE });
      const last = page[page.length - 1];
      if (last === undefined) return;
      const registered = page
        .filter((e) => e.type === EventTypes.ProspectRegistered && typeof e.data.customerId === 'string')
        .map((e) => e.data.customerId as string);
      await this.checkpoints.save(ChurnSweep.indexCheckpoint, last.position, registered);
      after = last.position;
    }
  }

  async sweepChurn(asOf: string): Promise<SweepReport> {
    // the calendar rule every business time goes through: 2025-02-30 is refused, not read as March 2
    let at: number;
    try {
      if (typeof asOf !== 'string' || !/T.*(Z|[+-]\d{2}:\d{2})$/.test(asOf)) throw new Error('not a date-time with a zone');
      at = businessTime(asOf, 'asOf');
    } catch {
      throw new CommandValidationError([
        { field: 'asOf', expected: 'an ISO-8601 date-time with a time zone on an existing calendar date, e.g. 2026-01-31T00:00:00.000Z' },
      ]);
    }
    // a sweep far in the future would churn everyone, and make every month up to it a month of the statistics
    const outOfRange = businessTimeOutOfRange(at);
    if (outOfRange !== undefined) throw new CommandValidationError([{ field: 'asOf', expected: outOfRange }]);
    const occurredAt = new Date(at).toISOString();
    await this.indexCustomers();

    const report: SweepReport = { asOf: occurredAt, customers: 0, churned: 0, refused: 0, conflicts: 0 };
    for (let page = await this.checkpoints.customers(undefined, PAGE); page.length > 0; ) {
      report.customers += page.length;
      const conflicted = await this.judge(page, occurredAt, report);
      report.conflicts += (await this.judge(conflicted, occurredAt, report)).length;
      const last = page[page.length - 1];
      page = page.length < PAGE ? [] : await this.checkpoints.customers(last, PAGE);
    }
    return report;
  }

  /** ChurnIfInactive for each customer, batchConcurrency at a time, counted in `report`; answers those whose stream kept changing. */
  private async judge(customerIds: readonly string[], occurredAt: string, report: SweepReport): Promise<string[]> {
    const conflicted: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let id = customerIds[next++]; id !== undefined; id = customerIds[next++]) {
        const command: ChurnIfInactive = { type: 'ChurnIfInactive', data: { customerId: id, occurredAt } };
        try {
          const result = await this.commands.executeDomain(command, { commandId: `churn:${occurredAt}:${id}` });
          if (result.status === 'applied' && result.events.some((e) => e.type === 'CustomerChurned')) report.churned++;
        } catch (error) {
          // An unknown or erased id is not a reason to stop sweeping everyone else.
          if (!(error instanceof DomainError)) throw error;
          // a failure for now (the stream kept changing), as the command path classifies it
          if (isTemporary(describeFailure(error))) conflicted.push(id);
          else report.refused++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.batchConcurrency, customerIds.length) }, worker));
    return conflicted;
  }
}
