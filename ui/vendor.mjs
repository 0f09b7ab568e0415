// Copies the four files GraphiQL's page loads from node_modules (after `npm ci`) into vendor/,
// gzipped, with their licences. The server compiles vendor/ into its binary (src/http/ui.rs), so the
// playground works offline and needs no `npm ci` at run time. Run after changing a version in
// package.json: `npm ci && npm run vendor`, then commit vendor/.
// `node vendor.mjs --check` writes nothing: it fails when vendor/ differs from node_modules.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

const files = [
  ['graphiql/graphiql.min.js', 'graphiql.min.js'],
  ['graphiql/graphiql.min.css', 'graphiql.min.css'],
  ['react/umd/react.production.min.js', 'react.production.min.js'],
  ['react-dom/umd/react-dom.production.min.js', 'react-dom.production.min.js'],
];
if (process.argv.includes('--check')) {
  const stale = files.filter(([source, name]) => !gunzipSync(readFileSync(`vendor/${name}.gz`)).equals(readFileSync(`node_modules/${source}`)));
  if (stale.length) {
    console.error(`vendor/ is not what package.json pins: ${stale.map(([, n]) => n).join(', ')} (run npm run vendor)`);
    process.exit(1);
  }
  console.log('ok    vendor/ holds the versions package.json pins');
  process.exit(0);
}
mkdirSync('vendor', { recursive: true });
const notices = [];
for (const [source, name] of files) {
  const bytes = readFileSync(`node_modules/${source}`);
  // Level 9, no file name or time in the header: the same input gives the same bytes.
  writeFileSync(`vendor/${name}.gz`, gzipSync(bytes, { level: 9 }));
  console.log(`vendor/${name}.gz  ${bytes.length} → ${readFileSync(`vendor/${name}.gz`).length} bytes`);
}
for (const pkg of ['graphiql', 'react', 'react-dom']) {
  const { version, license } = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`, 'utf8'));
  notices.push(`${pkg} ${version} (${license})\n\n${readFileSync(`node_modules/${pkg}/LICENSE`, 'utf8').trim()}\n`);
}
writeFileSync('vendor/LICENSES.txt', `Third-party files in this directory, from the npm registry:\n\n${notices.join('\n---\n\n')}`);
