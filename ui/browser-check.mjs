// Headless Chromium against a live Forklift (run by .ci/run):
//  - GraphiQL loads from the server's own assets (nothing from elsewhere), its Docs explorer lists
//    the `Query` type (introspection works), a typo in the editor is underlined (the schema
//    lints), and a query runs;
//  - a page served from another origin calls the API through CORS;
//  - the provisioning monitor follows a fork phase by phase, titled by the tenant's slug, and an
//    upgrade with its conflicts;
//  - with FORKLIFT_FAILING_URL (a server whose forks fail, FORKLIFT_FORK_FAILPOINT), the monitor
//    shows a rolled-back run's error (the client-safe message) and marks its phases' counts as
//    undone.
// Usage: FORKLIFT_URL=http://127.0.0.1:8080 FORKLIFT_TOKEN=… [FORKLIFT_FAILING_URL=…] node browser-check.mjs [outdir]
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const base = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080';
const failing = process.env.FORKLIFT_FAILING_URL;
const token = process.env.FORKLIFT_TOKEN;
const out = process.argv[2] ?? '.';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!token) throw new Error('FORKLIFT_TOKEN is required');

async function gql(server, query, variables = {}, tenant = undefined) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  if (tenant) headers['x-tenant'] = tenant;
  const response = await fetch(`${server}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const external = [];
page.on('request', (request) => {
  const url = new URL(request.url());
  if (url.origin !== new URL(base).origin && !url.protocol.startsWith('data') && !url.protocol.startsWith('blob')) external.push(request.url());
});

// GraphiQL, offline: every asset from this server; the Docs explorer lists Query.
const query = '{ me { subject isPlatformAdmin } }';
await page.goto(`${base}/graphiql#token=${encodeURIComponent(token)}&query=${encodeURIComponent(query)}`);
await page.waitForSelector('.graphiql-container', { timeout: 20000 });
await page.click('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]');
await page.waitForFunction(() => {
  const docs = document.querySelector('.graphiql-doc-explorer');
  return docs && docs.textContent.includes('query: Query') && !/Error fetching schema/i.test(document.body.textContent);
}, null, { timeout: 20000 });
await page.click('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name >> text=Query');
await page.waitForFunction(() => document.querySelector('.graphiql-doc-explorer')?.textContent.includes('applications'), null, { timeout: 20000 });
console.log('ok    GraphiQL Docs explorer lists Query and its fields (introspection)');
await page.click('.graphiql-execute-button');
await page.waitForFunction(() => document.querySelector('.graphiql-response')?.textContent.includes('isPlatformAdmin'), null, { timeout: 20000 });
await page.screenshot({ path: `${out}/graphiql.png` });
console.log('ok    GraphiQL ran a query with assets served by Forklift');

// A typo is underlined once the schema is known.
const typo = '{ me { subjectt } }';
await page.goto(`${base}/graphiql#token=${encodeURIComponent(token)}&query=${encodeURIComponent(typo)}`);
await page.reload();
await page.waitForSelector('.graphiql-container', { timeout: 20000 });
await page.waitForFunction(() => [...document.querySelectorAll('.graphiql-query-editor .CodeMirror-lint-mark-error, .graphiql-query-editor .CodeMirror-lint-mark')]
  .some((mark) => mark.textContent.includes('subjectt')), null, { timeout: 20000 });
await page.screenshot({ path: `${out}/graphiql-lint.png` });
if (external.length) throw new Error(`GraphiQL loaded assets from elsewhere: ${external.join(', ')}`);
console.log('ok    GraphiQL underlines a typo (subjectt)');

// Another origin: a page served on another port calls the API with the token and a tenant header
// (a preflighted request), and reads the answer.
const other = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(`<!doctype html><title>admin ui</title><pre id="out">…</pre><script>
    fetch(${JSON.stringify(`${base}/graphql`)}, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + ${JSON.stringify(token)}, 'x-tenant': 'demo' },
      body: JSON.stringify({ query: '{ applications(first: 1) { totalCount } }' }),
    }).then((r) => r.json().then((body) => ({ body, id: r.headers.get('x-request-id') })))
      .then(({ body, id }) => { document.getElementById('out').textContent = JSON.stringify({ ...body, requestId: id }); })
      .catch((e) => { document.getElementById('out').textContent = 'FAILED ' + e; });
  </script>`);
});
await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
const otherOrigin = `http://127.0.0.1:${other.address().port}`;
if (otherOrigin === new URL(base).origin) throw new Error('the page must be on another origin');
const cors = await browser.newPage();
await cors.goto(`${otherOrigin}/`);
await cors.waitForFunction(() => document.getElementById('out').textContent !== '…', null, { timeout: 20000 });
const answer = await cors.$eval('#out', (el) => el.textContent);
if (!answer.includes('totalCount') || !answer.includes('requestId":"')) throw new Error(`the cross-origin call failed: ${answer}`);
other.close();
console.log(`ok    a page on ${otherOrigin} called ${base} through CORS: ${answer}`);

// The monitor follows a new fork to its end, phase by phase, titled by the tenant's slug.
const slug = `browser-${Date.now().toString(36)}`;
await gql(base, 'mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }', { input: { name: `Browser ${slug}`, slug, status: 'ACTIVE' } });
const { forkTenant } = await gql(base, 'mutation($t: String!) { forkTenant(input: { target: $t }) { id } }', { t: slug });
await page.goto(`${base}/monitor#token=${encodeURIComponent(token)}&run=${encodeURIComponent(forkTenant.id)}`);
await page.waitForFunction(() => document.getElementById('run-state')?.dataset.kind === 'RUN_FINISHED', null, { timeout: 20000 });
const phases = await page.$$eval('ol.phases li', (items) => items.map((li) => [li.dataset.phase, li.className]));
if (phases.length !== 5 || phases.some(([, status]) => status !== 'done')) throw new Error(`phases: ${JSON.stringify(phases)}`);
await page.waitForFunction((s) => document.getElementById('run-title')?.textContent === `Run of ${s}`, slug, { timeout: 20000 });
await page.waitForFunction((s) => [...document.querySelectorAll('#runs td.slug')].some((td) => td.textContent === s), slug, { timeout: 20000 });
await page.screenshot({ path: `${out}/monitor.png` });
console.log(`ok    the monitor followed a fork of ${slug} through its five phases`);

// An upgrade with a conflict: the template and the tenant rename the same application; the
// monitor titles the run as an upgrade and lists the conflict, the tenant's value kept.
{
  const first = '{ applications(first: 1, orderBy: CODE_ASC) { nodes { id code } } }';
  const [templateApp] = (await gql(base, first, {}, 'template')).applications.nodes;
  const [tenantApp] = (await gql(base, first, {}, slug)).applications.nodes;
  if (!templateApp || templateApp.code !== tenantApp?.code) throw new Error('the fork copied the first application');
  const rename = 'mutation($id: ID!, $name: String!) { updateApplication(id: $id, input: { name: $name }) { id } }';
  await gql(base, rename, { id: tenantApp.id, name: `Ours ${slug}` }, slug);
  await gql(base, rename, { id: templateApp.id, name: `Theirs ${slug}` }, 'template');
  const { upgradeTenant } = await gql(base, 'mutation($t: String!) { upgradeTenant(input: { target: $t }) { id } }', { t: slug });
  // Only the hash differs from the page already open: load it afresh.
  await page.goto('about:blank');
  await page.goto(`${base}/monitor#token=${encodeURIComponent(token)}&run=${encodeURIComponent(upgradeTenant.id)}`);
  await page.waitForFunction(() => document.getElementById('run-state')?.dataset.kind === 'RUN_FINISHED', null, { timeout: 20000 });
  await page.waitForFunction((s) => document.getElementById('run-title')?.textContent === `Upgrade of ${s}`, slug, { timeout: 20000 });
  await page.waitForFunction((s) => [...document.querySelectorAll('#conflict-list li.conflict')]
    .some((li) => li.textContent.includes('Application.name') && li.textContent.includes(`Ours ${s}`)), slug, { timeout: 20000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#runs td.kind')].some((td) => td.textContent === 'UPGRADE'), null, { timeout: 20000 });
  await page.screenshot({ path: `${out}/monitor-upgrade.png` });
  console.log(`ok    the monitor shows an upgrade of ${slug} and its conflict (Application.name, the tenant's value kept)`);
}

// A move to the named database eu1 (the CI server configures it): the monitor titles the run
// with where it goes, follows its three phases, and lists it in the runs table.
{
  const { moveTenant } = await gql(base, 'mutation($id: ID!) { moveTenant(id: $id, database: "eu1") { id kind } }', { id: slug });
  if (moveTenant.kind !== 'MOVE') throw new Error(`moveTenant gave a run of kind ${moveTenant.kind}`);
  await page.goto('about:blank');
  await page.goto(`${base}/monitor#token=${encodeURIComponent(token)}&run=${encodeURIComponent(moveTenant.id)}`);
  await page.waitForFunction(() => document.getElementById('run-state')?.dataset.kind === 'RUN_FINISHED', null, { timeout: 20000 });
  await page.waitForFunction((s) => document.getElementById('run-title')?.textContent === `Move of ${s}: main → eu1`, slug, { timeout: 20000 });
  const phases = await page.$$eval('ol.phases li', (items) => items.map((li) => [li.dataset.phase, li.className]));
  if (JSON.stringify(phases) !== JSON.stringify([['MOVE_COPY', 'done'], ['MOVE_SWITCH', 'done'], ['MOVE_CLEANUP', 'done']])) {
    throw new Error(`move phases: ${JSON.stringify(phases)}`);
  }
  await page.waitForFunction(() => [...document.querySelectorAll('#runs td.kind')].some((td) => td.textContent === 'MOVE main → eu1'), null, { timeout: 20000 });
  const { tenant } = await gql(base, 'query($id: ID!) { tenant(id: $id) { database } }', { id: slug });
  if (tenant.database !== 'eu1') throw new Error(`after the move the tenant is in ${tenant.database}`);
  await page.screenshot({ path: `${out}/monitor-move.png` });
  console.log(`ok    the monitor followed the move of ${slug} to eu1 through its three phases`);
}

// A rolled-back run: its client-safe error, and its phases' counts marked undone.
if (failing) {
  const doomed = `doomed-${Date.now().toString(36)}`;
  await gql(failing, 'mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }', { input: { name: `Doomed ${doomed}`, slug: doomed, status: 'ACTIVE' } });
  const run = (await gql(failing, 'mutation($t: String!) { forkTenant(input: { target: $t }) { id } }', { t: doomed })).forkTenant;
  await page.goto(`${failing}/monitor#token=${encodeURIComponent(token)}&run=${encodeURIComponent(run.id)}`);
  await page.waitForFunction(() => document.getElementById('run-state')?.dataset.kind === 'RUN_ROLLED_BACK', null, { timeout: 20000 });
  await page.waitForFunction(() => {
    const error = document.getElementById('run-error');
    return error && !error.hidden && /rolled back/i.test(error.textContent.replace(/^Rolled back: /, ''));
  }, null, { timeout: 20000 });
  const undone = await page.$$eval('ol.phases li.undone', (items) => items.map((li) => li.dataset.phase));
  if (undone.length === 0) throw new Error('no phase marked undone');
  const failed = await page.$$eval('ol.phases li.failed', (items) => items.map((li) => li.dataset.phase));
  await page.screenshot({ path: `${out}/monitor-rolled-back.png` });
  console.log(`ok    the monitor shows a rolled-back run's error; undone: ${undone.join(', ')}; failed: ${failed.join(', ')}`);
}
await browser.close();
