import Ajv from 'ajv';

/**
 * Checks an answer against the schema an OpenAPI document (the engine's `/docs-json`) gives for
 * `method path` and the answer's status (200 unless told): answers the validation errors, none when
 * the answer is as described. The schemas' `format`s are descriptive only, OpenAPI's `nullable` is
 * understood, and `$ref`s to the document's components are followed (recursive answers use them).
 */
export function openApiAnswerErrors(doc: unknown, path: string, method: 'get' | 'post', answer: unknown, status = 200): string[] {
  const { paths, components } = doc as {
    paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: object }> }> }>>;
    components?: object;
  };
  const content = paths?.[path]?.[method]?.responses?.[String(status)]?.content;
  const schema = (content?.['application/json'] ?? content?.['application/problem+json'])?.schema;
  if (schema === undefined) return [`the document has no JSON ${status} schema for ${method.toUpperCase()} ${path}`];
  // the answer's schema beside the document's components, so `#/components/schemas/…` resolves
  const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile({ allOf: [schema], components: components ?? {} });
  if (validate(answer)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(answer)'} ${e.message ?? 'is not as described'}${e.params && 'additionalProperty' in e.params ? `: ${String(e.params['additionalProperty'])}` : ''}`);
}
