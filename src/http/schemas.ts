import { type SchemaOptions, type TLiteral, type TSchema, Type } from '@sinclair/typebox';

/** RFC 9457 problem details, as every error is answered. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable snake_case error code (docs/errors.md)' }),
  },
  { $id: 'Problem', description: 'application/problem+json (RFC 9457)' },
);

/** `{ items: [...], nextCursor? }` (API.md "Collections"). */
export const Collection = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String()) });

export const TenantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }) });

/** Error responses every authenticated route may give, for the OpenAPI document. */
export const problemResponses = {
  400: Type.Ref('Problem'),
  401: Type.Ref('Problem'),
  404: Type.Ref('Problem'),
};

export const Timestamp = Type.String({ format: 'date-time' });

/**
 * A union of string literals (`anyOf` of `const`s in JSON Schema) whose static type is the union
 * of the values, so that `Static<>` keeps `'active' | 'expired'` rather than `string`.
 */
export const Literals = <const T extends string[]>(values: [...T], options?: SchemaOptions) =>
  Type.Union(values.map((v) => Type.Literal(v)) as { [K in keyof T]: TLiteral<T[K]> }, options);
