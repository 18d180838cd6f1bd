/**
 * `npm run proto`: regenerates each protocol's pb/*.ts from its .proto with protons, extended so that
 * every repeated scalar field decodes both encodings proto3 allows.
 *
 * protons 9 reads repeated scalars only unpacked (one tag per element), but proto3 writers — protoc's
 * code in every language, protobufjs — pack them by default, and the spec requires parsers to accept
 * both. Upstream fixed this after 9.0.2 (ipfs/protons#24, #205) in a release not published yet; until
 * one is, this script patches protons' array-field generator before generating, so the output stays
 * plain generated code that this command reproduces. It refuses to run on another protons major:
 * check whether that one decodes packed fields itself (test/unit/protobuf-interop.test.ts tells) and
 * drop this extension if it does.
 *
 * The packed branch keeps each field's `limits` (checked per element, as for unpacked input) and
 * refuses a run that reaches past its message or whose last element overruns the run.
 */
import { readFile } from 'node:fs/promises'
import { generate } from 'protons'

const PROTOS = [
  'src/core/task/pb/task.proto',
  'src/core/model-transfer/pb/model.proto',
  'src/core/discovery/pb/advert.proto'
]
const PROTONS_MAJOR = '9.'
/** Scalar types proto3 packs; strings, bytes and messages are always one tag per element. */
const PACKABLE = new Set(['bool', 'double', 'fixed32', 'fixed64', 'float', 'int32', 'int64', 'sfixed32', 'sfixed64', 'sint32', 'sint64', 'uint32', 'uint64'])

/** The parts of protons' generator this extension relies on (protons 9.0). */
interface GeneratorField { id: number, name: string, type: string }
interface GeneratorParent {
  findType(type: string): object
  addImport(module: string, symbol: string): void
}
type CaseGenerator = (this: GeneratorField, parent: GeneratorParent) => string
interface ArrayFieldClass { prototype: { getDecoder: CaseGenerator, getStreamingDecoder: CaseGenerator } }

const protonsUrl = import.meta.resolve('protons')
const { version } = JSON.parse(await readFile(new URL('../../package.json', protonsUrl), 'utf8')) as { version: string }
if (!version.startsWith(PROTONS_MAJOR)) {
  throw new Error(`scripts/proto.ts extends protons ${PROTONS_MAJOR}x, found ${version}: see the comment at its top`)
}
// Internal modules, loaded by URL (the package exports only its entry point); the same URLs its
// entry point imports, so these are the very classes `generate` uses.
const { ArrayField } = await import(new URL('fields/array-field.js', protonsUrl).href) as { ArrayField: ArrayFieldClass }
const { Enum } = await import(new URL('types/enum.js', protonsUrl).href) as { Enum: new (...args: never[]) => object }
const { Primitive } = await import(new URL('types/primitive.js', protonsUrl).href) as { Primitive: new (...args: never[]) => { pbType: string } }

function packable (field: GeneratorField, parent: GeneratorParent): boolean {
  const type = parent.findType(field.type)
  return type instanceof Enum || (type instanceof Primitive && PACKABLE.has(type.pbType))
}

/**
 * Wraps protons' `case N: { <limit check> <read one element> break }` so that a length-delimited
 * tag reads a packed run of elements with the same per-element code.
 */
function acceptPacked (original: CaseGenerator): CaseGenerator {
  return function (this: GeneratorField, parent: GeneratorParent): string {
    const unpacked = original.call(this, parent)
    if (!packable(this, parent)) return unpacked
    const match = /^case (\d+): \{\n([\s\S]*?)(\n\s*)break\n\s*\}$/.exec(unpacked.trim())
    if (match == null || Number(match[1]) !== this.id) {
      throw new Error(`protons generated an unexpected decoder for repeated field "${this.name}":\n${unpacked}`)
    }
    const element = match[2].replace(/^\n+/, '')
    const inRun = element.replace(/^(?=.)/gm, '    ')
    parent.addImport('protons-runtime', 'ParseError')
    return `case ${this.id}: {
              // proto3 writers pack repeated scalars by default; parsers must accept both forms
              if ((tag & 7) === 2) {
                const packedEnd = reader.uint32() + reader.pos

                if (packedEnd > end) {
                  throw new ParseError('Decode error - packed field "${this.name}" reaches past its message')
                }

                while (reader.pos < packedEnd) {
${inRun}
                }

                if (reader.pos !== packedEnd) {
                  throw new ParseError('Decode error - packed field "${this.name}" overruns its length')
                }

                break
              }

${element}${match[3]}break
            }`
  }
}

ArrayField.prototype.getDecoder = acceptPacked(ArrayField.prototype.getDecoder)
ArrayField.prototype.getStreamingDecoder = acceptPacked(ArrayField.prototype.getStreamingDecoder)

for (const source of PROTOS) await generate(source, {})
