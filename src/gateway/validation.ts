/**
 * fastify's validator compiler on TypeBox (as @fastify/type-provider-typebox's, with query strings
 * and path parameters converted to the schema's types first), with a bound on the work a bad body
 * makes: an array longer than its maxItems is refused on its length alone, before its items are
 * checked, so a body of millions of wrong items makes one error, not millions.
 */
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'
import type { TSchema } from 'typebox'

/** Errors named in one message. */
const MAX_REPORTED = 3

interface ArraySchema { type: 'array', maxItems?: number }
interface ObjectSchema { type: 'object', properties?: Record<string, TSchema> }

/** An array (the value itself, or one of its properties) longer than the schema allows. */
function tooLong (schema: TSchema, value: unknown): FastifySchemaValidationError | undefined {
  const over = (s: TSchema, v: unknown, path: string): FastifySchemaValidationError | undefined => {
    const { maxItems } = s as ArraySchema
    if ((s as ArraySchema).type !== 'array' || maxItems == null || !Array.isArray(v) || v.length <= maxItems) return undefined
    return { keyword: 'maxItems', instancePath: path, schemaPath: '#', params: { limit: maxItems }, message: `must have at most ${maxItems} items (has ${v.length})` }
  }
  const top = over(schema, value, '')
  if (top != null) return top
  const { properties } = schema as ObjectSchema
  if ((schema as ObjectSchema).type !== 'object' || properties == null || typeof value !== 'object' || value === null) return undefined
  for (const [key, s] of Object.entries(properties)) {
    const found = over(s, (value as Record<string, unknown>)[key], `/${key}`)
    if (found != null) return found
  }
  return undefined
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema)
  return (input) => {
    const value = httpPart === 'body' ? input : Value.Convert(schema, input)
    const long = tooLong(schema, value)
    if (long != null) return { error: [long] }
    if (validator.Check(value)) return { value }
    const errors = validator.Errors(value) as FastifySchemaValidationError[]
    // An unknown property is reported twice (its own 'schema is false', and additionalProperties): keep the clearer one.
    const clear = errors.filter(e => e.keyword !== 'boolean')
    return { error: (clear.length > 0 ? clear : errors).slice(0, MAX_REPORTED) }
  }
}

/** fastify's schemaErrorFormatter: `body/replicas must be <= 3; body must not have additional properties (replica)`. */
export function schemaErrorFormatter (errors: FastifySchemaValidationError[], dataVar: string): Error {
  const lines = errors.slice(0, MAX_REPORTED).map(e => {
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperties?: string[] }).additionalProperties?.join(', ') ?? '')})` : ''
    return `${dataVar}${e.instancePath} ${e.message ?? 'is not valid'}${extra}`
  })
  return new Error(lines.join('; '))
}
