import { BadRequestException } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import type { FieldError } from '@clientele/contracts';
import { problem } from './problem-details';

/**
 * Query strings are validated like bodies: a class-validator DTO, unknown parameters refused, and
 * a 400 problem naming each bad parameter and what it expects.
 */
export function validQuery<T extends object>(dto: new () => T, query: Record<string, unknown>): T {
  const instance = plainToInstance(dto, query, { enableImplicitConversion: false });
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length === 0) return instance;
  throw new BadRequestException(
    problem(400, 'invalid_query', 'Invalid query', errors.map(describe).map((e) => `${e.field}: ${e.expected}`).join('; '), {
      errors: errors.map(describe),
    }),
  );
}

function describe(error: ValidationError): FieldError {
  const messages = Object.values(error.constraints ?? {});
  return { field: error.property, expected: messages.join('; ') || 'a valid value' };
}
