import { Counter, Gauge, Histogram, Registry, exponentialBuckets } from 'prom-client';

/**
 * The figures operators watch, in a registry of the module's own (not prom-client's global one) so
 * two apps in one process (tests) never share or clash. The engine serves `registry` at /metrics.
 */
export class ClienteleMetrics {
  readonly registry = new Registry();

  readonly commands = new Counter({
    name: 'clientele_commands_total',
    help: 'Commands handled, by command type and outcome (applied, duplicate, no_op, invalid, rule, conflict, internal)',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });

  readonly commandSeconds = new Histogram({
    name: 'clientele_command_duration_seconds',
    help: 'Time from a validated command to its answer (load, decide, append, retries)',
    labelNames: ['type'] as const,
    buckets: exponentialBuckets(0.0005, 2, 14),
    registers: [this.registry],
  });

  readonly appendSize = new Histogram({
    name: 'clientele_append_events',
    help: 'Events written by one command append',
    buckets: [1, 2, 3, 4, 6, 8, 16],
    registers: [this.registry],
  });

  readonly conflicts = new Counter({
    name: 'clientele_append_conflicts_total',
    help: 'Appends that met a newer stream revision and were retried or gave up',
    registers: [this.registry],
  });

  readonly processPosition = new Gauge({
    name: 'clientele_process_manager_position',
    help: 'Last global position the referral process manager has handled',
    registers: [this.registry],
  });

  /**
   * Counts one command outcome. Label objects are made once per type and outcome: prom-client keeps
   * the first one it sees, and allocating one per command was measurable on the command path.
   */
  countCommand(type: string, status: string, by = 1): void {
    const key = `${type}\u0000${status}`;
    let labels = this.commandLabels.get(key);
    if (labels === undefined) this.commandLabels.set(key, (labels = Object.freeze({ type, status })));
    this.commands.inc(labels, by);
  }

  /** Observes one command's time from its validated form to its answer, in seconds. */
  observeCommandSeconds(type: string, seconds: number): void {
    let labels = this.typeLabels.get(type);
    if (labels === undefined) this.typeLabels.set(type, (labels = Object.freeze({ type })));
    this.commandSeconds.observe(labels, seconds);
  }

  private readonly commandLabels = new Map<string, Readonly<{ type: string; status: string }>>();
  private readonly typeLabels = new Map<string, Readonly<{ type: string }>>();

  readonly processLag = new Gauge({
    name: 'clientele_process_manager_lag_events',
    help: 'Events stored but not yet handled by the referral process manager',
    registers: [this.registry],
  });
}
