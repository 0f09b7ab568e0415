// Apollo Client (InMemoryCache) against a live Forklift, with the typed documents: a nested query,
// a mutation, a paginated list; the cache must normalise objects by __typename + id, so the
// mutation's answer updates the application everywhere without a refetch.
//   FORKLIFT_URL=… FORKLIFT_TOKEN=… FORKLIFT_TENANT=demo node dist/apollo-check.js
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client/core/index.js';
import assert from 'node:assert/strict';

import { Applications, ForkRuns, Me, RenameApplication } from './operations.js';
import type { ForkRunStatus, Role } from './gql/graphql.js';

const uri = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080/graphql';
const token = process.env.FORKLIFT_TOKEN;
const tenant = process.env.FORKLIFT_TENANT ?? 'demo';
if (!token) throw new Error('FORKLIFT_TOKEN is required');

// One list per ordering; a page asked with `after` is appended to the pages before it.
type Page = { nodes: unknown[] };
const cache = new InMemoryCache({
  typePolicies: {
    Query: {
      fields: {
        applications: {
          keyArgs: ['orderBy'],
          merge(existing: Page | undefined, incoming: Page, { args }) {
            return existing && args?.after ? { ...incoming, nodes: [...existing.nodes, ...incoming.nodes] } : incoming;
          },
        },
      },
    },
  },
});
const client = new ApolloClient({
  cache,
  link: new HttpLink({ uri, headers: { Authorization: `Bearer ${token}`, 'X-Tenant': tenant } }),
});

// A nested query (applications → actions → placements → surface type).
const first = await client.query({ query: Applications, variables: { first: 2 } });
const page = first.data.applications;
assert.ok(page.totalCount >= 3, `the tenant has applications: ${page.totalCount}`);
assert.equal(page.nodes.length, 2);
const app = page.nodes[0];
const key = cache.identify({ __typename: 'Application', id: app.id });
assert.equal(key, `Application:${app.id}`);
const stored = cache.extract() as Record<string, { name?: string; actions?: unknown[] }>;
assert.ok(key && stored[key], `the cache holds ${key}`);
assert.ok(Object.keys(stored).some((k) => k.startsWith('Action:')), 'actions are normalised too');
assert.ok(Object.keys(stored).some((k) => k.startsWith('SurfaceType:')), 'and their surface types');
console.log(`ok    nested query: ${page.nodes.length} of ${page.totalCount} applications, cache keys by __typename:id`);

// The next page, merged into the same cached list by the field policy above.
const more = await client.query({ query: Applications, variables: { first: 2, after: page.pageInfo.endCursor }, fetchPolicy: 'network-only' });
assert.ok(more.data.applications.nodes.length > 0, 'a second page');
const merged = client.readQuery({ query: Applications, variables: { first: 2 } });
assert.equal(merged?.applications.nodes.length, Math.min(4, page.totalCount), 'the pages are merged in the cache');
const ids = new Set(merged?.applications.nodes.map((n) => n.id));
assert.equal(ids.size, merged?.applications.nodes.length, 'no duplicates across pages');
console.log(`ok    paginated list: ${merged?.applications.nodes.length} applications in one cached list after the second page`);

// A mutation: its answer lands on the normalised object, so the cached query sees it at once.
const name = `${app.name} (renamed ${Date.now()})`;
const renamed = await client.mutate({ mutation: RenameApplication, variables: { id: app.id, name } });
assert.equal(renamed.data?.updateApplication.name, name);
const after = client.readQuery({ query: Applications, variables: { first: 2 } });
assert.equal(after?.applications.nodes.find((n) => n.id === app.id)?.name, name, 'the list shows the new name without a refetch');
await client.mutate({ mutation: RenameApplication, variables: { id: app.id, name: app.name } });
console.log('ok    mutation: the cached list follows the renamed application');

// Typed enums from the schema.
const me = await client.query({ query: Me });
const roles: Role[] = me.data.me.memberships.map((m) => m.role);
const runs = await client.query({ query: ForkRuns, fetchPolicy: 'network-only' });
const statuses: ForkRunStatus[] = runs.data.forkRuns.nodes.map((r) => r.status);
assert.ok(statuses.every((s) => ['PENDING', 'RUNNING', 'FINISHED', 'ROLLED_BACK', 'ABANDONED', 'PLANNED'].includes(s)));
console.log(`ok    enums: roles ${JSON.stringify(roles)}, run statuses ${JSON.stringify(statuses)}`);
