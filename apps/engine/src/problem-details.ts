import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { FieldError } from '@clientele/contracts';
import { DomainErrorCodes } from '@clientele/domain';
import { describeFailure, type CommandFailure } from '@clientele/application';
import { InvalidQueryError, isReadModelMissing } from '@clientele/projections';

/** RFC 9457 problem details, the one error shape of the HTTP API. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** stable machine-readable code: a domain error code or one of ours */
  code: string;
  /** for 400: every field that was wrong and what was expected there */
  errors?: FieldError[];
  field?: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problem(status: number, code: string, title: string, detail: string, extra: Partial<ProblemDetails> = {}): ProblemDetails {
  return { type: `urn:clientele:problem:${code}`, title, status, detail, code, ...extra };
}

/** The one mapping from a failed command to HTTP, shared by single commands and batch items. */
export function problemForFailure(failure: CommandFailure): ProblemDetails {
  switch (failure.kind) {
    case 'invalid':
      return problem(400, failure.code, 'Invalid command', failure.message, { errors: failure.errors });
    case 'rule':
      return problem(422, failure.code, 'Refused by a business rule', failure.message, failure.field ? { field: failure.field } : {});
    case 'conflict':
      return problem(
        409,
        failure.code,
        failure.code === DomainErrorCodes.ConcurrencyConflict ? 'Concurrent change' : 'Command id reused',
        failure.message,
        failure.field !== undefined ? { field: failure.field } : {},
      );
    case 'internal':
      return problem(500, failure.code, 'Internal error', failure.message);
  }
}

export function sendProblem(res: Response, body: ProblemDetails): void {
  res.status(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

const HTTP_CODES: Record<number, [code: string, title: string]> = {
  400: ['bad_request', 'Bad request'],
  404: ['not_found', 'Not found'],
  405: ['method_not_allowed', 'Method not allowed'],
  413: ['payload_too_large', 'Payload too large'],
  415: ['unsupported_media_type', 'Unsupported media type'],
};

/** Maps every error that reaches the HTTP layer to problem details; libraries never throw HTTP errors. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(error: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const body = error.getResponse();
      if (isProblem(body)) return sendProblem(res, body);
      const detail = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? error.message);
      const [code, title] = HTTP_CODES[status] ?? [`http_${status}`, 'Error'];
      return sendProblem(res, problem(status, code, title, String(detail)));
    }
    // a read-model query refusing an argument the DTO could not judge (a cursor no page gave), or a
    // filter a statistic refuses (invalid_filter): named, with what it expects
    if (error instanceof InvalidQueryError) {
      const title = error.code === 'invalid_filter' ? 'Invalid filter' : 'Invalid query';
      return sendProblem(res, problem(400, error.code, title, error.message, { errors: [{ field: error.field, expected: error.expected }] }));
    }
    // a process without the projector role, before any projector prepared the read models
    if (isReadModelMissing(error)) {
      res.setHeader('Retry-After', '5');
      return sendProblem(
        res,
        problem(503, 'read_models_not_ready', 'Read models not ready', 'the read models this process serves are not there: a process with the projector role (CLIENTELE_ROLES) creates them from the log; after a rebuild replaced them, this process serves the new ones once restarted'),
      );
    }
    const failure = describeFailure(error);
    if (failure.kind === 'internal') {
      this.logger.error({ err: error }, 'unhandled error');
      // only commands are retried by id; a query is simply asked again
      if (host.switchToHttp().getRequest<Request>().method === 'GET') {
        return sendProblem(res, problem(500, 'internal_error', 'Internal error', 'the request could not be answered; it may be asked again'));
      }
    }
    sendProblem(res, problemForFailure(failure));
  }
}

function isProblem(body: unknown): body is ProblemDetails {
  return typeof body === 'object' && body !== null && 'type' in body && 'status' in body && 'code' in body;
}
