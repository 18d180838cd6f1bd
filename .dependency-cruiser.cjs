/**
 * The dependency direction, checked by `npm run lint:deps` (part of `npm test`):
 * ui → browser | node → net | runtime → models | ocr → core; gateway | mcp → the library (src/index.ts, src/node). `core` is pure: no libp2p, no DOM,
 * no onnxruntime. Generated protobuf code (pb/) is excluded from the checks on its own contents.
 */
const layer = (name) => `^src/${name}/`

module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      comment: 'src/core depends on nothing of ours outside core, and on no network, DOM or runtime library',
      severity: 'error',
      from: { path: layer('core') },
      to: { path: ['^src/(?!core/)', '^(node_modules/)?(libp2p|@libp2p|@multiformats|onnxruntime-[a-z]+|comlink|svelte)(/|$)'] }
    },
    {
      name: 'models-and-ocr-below-net',
      comment: 'pre- and post-processing (src/models, src/ocr) use core only',
      severity: 'error',
      from: { path: '^src/(models|ocr)/' },
      to: { path: '^src/(net|runtime|browser|node|ui)/' }
    },
    {
      name: 'net-and-runtime-below-platforms',
      comment: 'src/net and src/runtime know no platform (browser, node) and no UI',
      severity: 'error',
      from: { path: '^src/(net|runtime)/' },
      to: { path: '^src/(browser|node|ui)/' }
    },
    {
      name: 'net-and-runtime-apart',
      comment: 'the network adapters and the inference runtime meet only in a platform',
      severity: 'error',
      from: { path: '^src/net/' },
      to: { path: '^src/runtime/' }
    },
    {
      name: 'platforms-below-ui',
      comment: 'src/browser and src/node never import Svelte components or UI state',
      severity: 'error',
      from: { path: '^src/(browser|node)/' },
      to: { path: '^src/ui/' }
    },
    {
      name: 'apps-on-the-library',
      comment: 'the HTTP gateway and the MCP server are thin layers over the library (src/index.ts, src/node/requester*): no protocol, scheduler or runtime code of their own',
      severity: 'error',
      from: { path: '^src/(gateway|mcp)/' },
      to: { path: '^src/(core|net|runtime|browser|ui|ocr)/' }
    },
    {
      name: 'nothing-below-imports-the-apps',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(gateway|mcp)/' },
      to: { path: '^src/(gateway|mcp)/' }
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { pathNot: '/pb/' },
      to: { circular: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '/pb/[^/]+\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.svelte'] }
  }
}
