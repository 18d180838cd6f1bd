/**
 * JSON and JSONL request bodies. Both go through fastify's own JSON parser, which refuses
 * `__proto__` and `constructor.prototype` keys (prototype poisoning); a body it refuses is named
 * with the JSON syntax error and, for JSONL, its line.
 */
import { RequesterError } from '../index.js'
import type { FastifyBodyParser, FastifyInstance } from 'fastify'

export type ParseJson = (text: string, what: string) => unknown

/** `app`'s secure JSON parser as a function: RequesterError 'bad-request' saying what is wrong, under `what`. */
export function jsonParserOf (app: FastifyInstance): ParseJson {
  const secure = app.getDefaultJsonParser('error', 'error') as FastifyBodyParser<string>
  return (text, what) => {
    if (text.trim() === '') throw new RequesterError('bad-request', `${what} is empty`)
    let value: unknown
    let refused: Error | null = null
    // fastify's parser answers through its callback at once and never reads the request.
    void secure(undefined as never, text, (err: Error | null, v?: unknown) => { refused = err; value = v })
    if (refused == null) return value
    try {
      JSON.parse(text)
    } catch (err) {
      throw new RequesterError('bad-request', `${what} is not valid JSON: ${(err as Error).message}`)
    }
    throw new RequesterError('bad-request', `${what} has a __proto__ or constructor.prototype key, which is refused`)
  }
}

/** A JSONL body: one JSON value per non-blank line; RequesterError 'too-large' past `maxLines`. */
export function parseJsonLines (text: string, maxLines: number, parse: ParseJson): unknown[] {
  const values: unknown[] = []
  let lineNo = 0
  for (const line of text.split('\n')) {
    lineNo++
    if (line.trim() === '') continue
    if (values.length === maxLines) throw new RequesterError('too-large', `more than ${maxLines} lines (tasks); split the inputs into several jobs`)
    values.push(parse(line, `line ${lineNo}`))
  }
  if (values.length === 0) throw new RequesterError('bad-request', 'the JSONL body has no lines')
  return values
}
