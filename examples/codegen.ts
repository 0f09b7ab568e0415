// How a frontend team generates typed operations from Forklift's checked-in schema.
//
//   npm install -D @graphql-codegen/cli @graphql-codegen/client-preset
//   npx graphql-codegen --config codegen.ts
//
// `schema.graphql` is generated from the server's code and checked in (a test fails when it
// drifts), so types can be generated without a running server.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['src/**/*.{ts,tsx,graphql}'],
  generates: {
    './src/gql/': {
      preset: 'client',
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', Upload: 'File' },
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
