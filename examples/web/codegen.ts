// graphql-codegen against a live Forklift: the schema comes from the URL by introspection (on in
// development; FORKLIFT_INTROSPECTION=on in production), with the token every request needs.
//
//   FORKLIFT_URL=http://127.0.0.1:8080/graphql FORKLIFT_TOKEN=$(forklift token --sub me@example.org --admin) \
//     npx graphql-codegen --config codegen.ts
//
// (Without a running server, point `schema` at '../../schema.graphql', the checked-in SDL.)
import type { CodegenConfig } from '@graphql-codegen/cli';

const url = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080/graphql';
const token = process.env.FORKLIFT_TOKEN ?? '';

const config: CodegenConfig = {
  schema: [{ [url]: { headers: { Authorization: `Bearer ${token}` } } }],
  documents: ['src/**/*.ts', '!src/gql/**'],
  // ES module imports with `.js` extensions, as Node and tsc (NodeNext) want them.
  emitLegacyCommonJSImports: false,
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', Upload: 'File' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
