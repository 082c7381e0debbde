import Ajv from 'ajv';

/**
 * Checks an answer against the 200 schema an OpenAPI document (the engine's `/docs-json`) gives
 * for `method path`: answers the validation errors, none when the answer is as described. The
 * schemas' `format`s are descriptive only, and OpenAPI's `nullable` is understood.
 */
export function openApiAnswerErrors(doc: unknown, path: string, method: 'get' | 'post', answer: unknown): string[] {
  const paths = (doc as { paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: object }> }> }>> }).paths;
  const schema = paths?.[path]?.[method]?.responses?.['200']?.content?.['application/json']?.schema;
  if (schema === undefined) return [`the document has no JSON 200 schema for ${method.toUpperCase()} ${path}`];
  const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(schema);
  if (validate(answer)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(answer)'} ${e.message ?? 'is not as described'}${e.params && 'additionalProperty' in e.params ? `: ${String(e.params['additionalProperty'])}` : ''}`);
}
