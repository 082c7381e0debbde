import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

import { UsageError, type CliContext } from '../cli-context';
import { generateSyntheticCommands, MIN_WORKLOAD_DAYS } from '@clientele/generator';

export interface GenerateOptions {
  customers: number;
  seed: string;
  out?: string;
  from?: string;
  to?: string;
  idPrefix?: string;
  referralShare?: number;
}

/** Writes the workload as NDJSON, one envelope a line, honouring back-pressure. */
export const generateFile = async (options: GenerateOptions, context: CliContext): Promise<number> => {
  if (options.from !== undefined && options.to !== undefined) {
    const days = (Date.parse(`${options.to}T00:00:00Z`) - Date.parse(`${options.from}T00:00:00Z`)) / 86_400_000;
    if (!(days >= MIN_WORKLOAD_DAYS)) {
      throw new UsageError(`--to: expected a day at least ${MIN_WORKLOAD_DAYS} days after --from (${options.from}), got '${options.to}'`);
    }
  }
  const envelopes = generateSyntheticCommands({
    customers: options.customers,
    seed: options.seed,
    ...(options.from !== undefined ? { from: options.from } : {}),
    ...(options.to !== undefined ? { to: options.to } : {}),
    ...(options.idPrefix !== undefined ? { idPrefix: options.idPrefix } : {}),
    ...(options.referralShare !== undefined ? { referralShare: options.referralShare } : {}),
  });
  const out = options.out === undefined ? context.stdout : createWriteStream(options.out, { encoding: 'utf8' });
  for (const envelope of envelopes) {
    if (!out.write(`${JSON.stringify(envelope)}\n`)) await once(out, 'drain');
  }
  if (options.out !== undefined) {
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    context.stderr.write(`generated ${envelopes.length} commands for ${options.customers} customers (seed ${options.seed}) into ${options.out}\n`);
  }
  return 0;
};
