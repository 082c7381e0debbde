import { Inject, Injectable } from '@nestjs/common';
import { DomainError, type ChurnIfInactive } from '@clientele/domain';
import { CommandValidationError } from './application.errors';
import type { CheckpointStore } from './checkpoint.store';
import { CHECKPOINT_STORE, CLIENTELE_OPTIONS } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import { CommandService } from './command.service';
import { ReferralProcessRunner } from './referral-process.runner';

export interface SweepReport {
  asOf: string;
  customers: number;
  churned: number;
  refused: number;
}

const PAGE = 1000;

/**
 * Sends ChurnIfInactive as of a business date to every indexed customer; the decider judges each.
 * Command ids are `churn:<asOf>:<customerId>`, so running the same sweep twice records nothing new.
 */
@Injectable()
export class ChurnSweep {
  constructor(
    @Inject(CHECKPOINT_STORE) private readonly checkpoints: CheckpointStore,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
    private readonly commands: CommandService,
    private readonly runner: ReferralProcessRunner,
  ) {}

  async sweepChurn(asOf: string): Promise<SweepReport> {
    const at = Date.parse(asOf);
    if (typeof asOf !== 'string' || !/T.*(Z|[+-]\d{2}:\d{2})$/.test(asOf) || Number.isNaN(at)) {
      throw new CommandValidationError([
        { field: 'asOf', expected: 'an ISO-8601 date-time with a time zone, e.g. 2026-01-31T00:00:00.000Z' },
      ]);
    }
    const occurredAt = new Date(at).toISOString();
    // The index is fed by the runner: let it see every registration stored so far.
    if (this.runner.running) await this.runner.catchUp();

    const report: SweepReport = { asOf: occurredAt, customers: 0, churned: 0, refused: 0 };
    for (let page = await this.checkpoints.customers(undefined, PAGE); page.length > 0; ) {
      report.customers += page.length;
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let id = page[next++]; id !== undefined; id = page[next++]) {
          const command: ChurnIfInactive = { type: 'ChurnIfInactive', data: { customerId: id, occurredAt } };
          try {
            const result = await this.commands.executeDomain(command, { commandId: `churn:${occurredAt}:${id}` });
            if (result.status === 'applied' && result.events.some((e) => e.type === 'CustomerChurned')) report.churned++;
          } catch (error) {
            // An unknown or erased id is not a reason to stop sweeping everyone else.
            if (!(error instanceof DomainError)) throw error;
            report.refused++;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.options.batchConcurrency, page.length) }, worker));
      const last = page[page.length - 1];
      page = page.length < PAGE ? [] : await this.checkpoints.customers(last, PAGE);
    }
    return report;
  }
}
