// The graphql-http audit (GraphQL over HTTP spec) against a running Forklift.
// Usage: FORKLIFT_URL=http://127.0.0.1:8080/graphql FORKLIFT_TOKEN=… node http-audit.mjs
// Exits non-zero when any audit errors; warnings are printed (the README explains each).
import { serverAudits } from 'graphql-http';

const url = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080/graphql';
const token = process.env.FORKLIFT_TOKEN;
if (!token) {
  console.error('FORKLIFT_TOKEN is required (forklift token --sub ci --admin)');
  process.exit(2);
}

// Every request carries the token, as every client of Forklift must.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

let errors = 0;
let warnings = 0;
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  if (result.status === 'ok') {
    console.log(`ok    ${audit.id} ${audit.name}`);
  } else if (result.status === 'warn') {
    warnings += 1;
    console.log(`WARN  ${audit.id} ${audit.name}: ${result.reason}`);
  } else {
    errors += 1;
    console.log(`ERROR ${audit.id} ${audit.name}: ${result.reason}`);
  }
}
console.log(`\n${errors} errors, ${warnings} warnings`);
process.exit(errors > 0 ? 1 : 0);
