import type { NextFunction, Request, Response } from 'express';
import { exponentialBuckets, Histogram, type Registry } from 'prom-client';

/** the route label of a request no route answered (an unknown path, or a body refused before routing) */
export const NO_ROUTE = '(no route)';

/**
 * Requests by method, route template and status, with their time from arrival to the last byte of
 * the answer (`clientele_http_request_duration_seconds`; its `_count` is the request count): the
 * rate, errors and latency operators watch per endpoint. Registered first, so bodies refused for
 * their size or syntax are counted too. The route is the template (`/customers/:id`), never the
 * path, so customer ids do not become label values.
 */
export function httpMetrics(registry: Registry): (req: Request, res: Response, next: NextFunction) => void {
  const seconds = new Histogram({
    name: 'clientele_http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status: time from arrival to the end of the answer',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: exponentialBuckets(0.0005, 2, 16),
    registers: [registry],
  });
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      seconds.observe(
        { method: req.method, route: routeOf(req), status: String(res.statusCode) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    next();
  };
}

function routeOf(req: Request): string {
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : NO_ROUTE;
}
