// A Node client of Forklift: log in with a token, list applications, fork a new tenant and
// watch the fork finish over WebSocket (graphql-ws, protocol graphql-transport-ws).
//
//   FORKLIFT_URL=http://127.0.0.1:8080/graphql FORKLIFT_TOKEN=$(forklift token --sub me@example.org --admin) \
//     node fork-and-watch.mjs
//
// `npm ci` here installs graphql-request, graphql-ws and ws.
import { GraphQLClient } from 'graphql-request';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080/graphql';
const token = process.env.FORKLIFT_TOKEN;
if (!token) throw new Error('set FORKLIFT_TOKEN (forklift token --sub you@example.org --admin)');

// One graphql-request client per tenant (the X-Tenant header), all with the token.
function http(tenant) {
  const headers = { authorization: `Bearer ${token}` };
  if (tenant) headers['x-tenant'] = tenant;
  return new GraphQLClient(url, { headers });
}
const gql = (query, variables = {}, tenant) => http(tenant).request(query, variables);

const me = await gql('{ me { subject isPlatformAdmin } }');
console.log(`logged in as ${me.me.subject}`);

const template = await gql('{ applications(first: 50, orderBy: NAV_ORDER_ASC) { totalCount nodes { code name actions { key } } } }', {}, 'template');
console.log(`the template has ${template.applications.totalCount} applications`);
for (const app of template.applications.nodes) console.log(`  ${app.code}: ${app.actions.length} actions`);

const slug = `node-${Date.now().toString(36)}`;
await gql('mutation($input: CreateTenantInput!) { createTenant(input: $input) { id slug status } }', {
  input: { name: `Node example ${slug}`, slug, status: 'ACTIVE' },
});
const { forkTenant: run } = await gql('mutation($t: String!) { forkTenant(input: { target: $t }) { id status } }', { t: slug });
console.log(`fork ${run.id} of ${slug}: ${run.status}`);

const client = createClient({
  url: url.replace(/^http/, 'ws') + '/ws',
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  lazy: true,
  retryAttempts: 0,
});
const events = [];
await new Promise((resolve, reject) => {
  client.subscribe(
    { query: 'subscription($id: ID!) { forkProgress(runId: $id) { seq kind phase className count } }', variables: { id: run.id } },
    {
      next: ({ data, errors }) => {
        if (errors) return reject(new Error(errors[0].message));
        const e = data.forkProgress;
        events.push(e);
        console.log(`  #${e.seq} ${e.kind} ${e.phase ?? ''} ${e.className ?? ''} ${e.count ?? ''}`.trimEnd());
      },
      error: reject,
      complete: resolve,
    },
  );
});
await client.dispose();

const last = events.at(-1);
if (!last || last.kind !== 'RUN_FINISHED') throw new Error(`the fork did not finish: ${last?.kind}`);
if (events.some((e, i) => e.seq !== i + 1)) throw new Error('events out of order');
const apps = await gql('{ applications { totalCount } }', {}, slug);
if (apps.applications.totalCount !== template.applications.totalCount) {
  throw new Error(`the tenant has ${apps.applications.totalCount} applications, the template ${template.applications.totalCount}`);
}
console.log(`${slug} is ready with ${apps.applications.totalCount} applications (${events.length} events)`);
