// Headless Chromium against a live Forklift (run by .ci/run): GraphiQL loads from the server's
// own assets and runs a query; the provisioning monitor follows a fork phase by phase.
// Usage: FORKLIFT_URL=http://127.0.0.1:8080 FORKLIFT_TOKEN=… node browser-check.mjs [outdir]
import { chromium } from 'playwright-core';

const base = process.env.FORKLIFT_URL ?? 'http://127.0.0.1:8080';
const token = process.env.FORKLIFT_TOKEN;
const out = process.argv[2] ?? '.';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!token) throw new Error('FORKLIFT_TOKEN is required');

async function gql(query, variables = {}) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
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
  if (url.origin !== new URL(base).origin && !url.protocol.startsWith('data')) external.push(request.url());
});

// GraphiQL, offline: every asset from this server, and a query that runs.
const query = '{ me { subject isPlatformAdmin } }';
await page.goto(`${base}/graphiql#token=${encodeURIComponent(token)}&query=${encodeURIComponent(query)}`);
await page.waitForSelector('.graphiql-container', { timeout: 20000 });
await page.click('.graphiql-execute-button');
await page.waitForFunction(() => document.querySelector('.graphiql-response')?.textContent.includes('isPlatformAdmin'), null, { timeout: 20000 });
await page.screenshot({ path: `${out}/graphiql.png` });
if (external.length) throw new Error(`GraphiQL loaded assets from elsewhere: ${external.join(', ')}`);
console.log('ok    GraphiQL ran a query with assets served by Forklift');

// The monitor follows a new fork to its end, phase by phase.
const slug = `browser-${Date.now().toString(36)}`;
await gql('mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }', { input: { name: `Browser ${slug}`, slug, status: 'ACTIVE' } });
const { forkTenant } = await gql('mutation($t: String!) { forkTenant(input: { target: $t }) { id } }', { t: slug });
await page.goto(`${base}/monitor#token=${encodeURIComponent(token)}&run=${encodeURIComponent(forkTenant.id)}`);
await page.waitForFunction(() => document.getElementById('run-state')?.dataset.kind === 'RUN_FINISHED', null, { timeout: 20000 });
const phases = await page.$$eval('ol.phases li', (items) => items.map((li) => [li.dataset.phase, li.className]));
if (phases.length !== 5 || phases.some(([, status]) => status !== 'done')) throw new Error(`phases: ${JSON.stringify(phases)}`);
await page.screenshot({ path: `${out}/monitor.png` });
console.log('ok    the monitor followed a fork through its five phases');
await browser.close();
