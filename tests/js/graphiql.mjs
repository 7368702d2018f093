// GraphiQL with the network off: headless Chromium opens the API's GraphiQL page with
// every request to anywhere but the API refused (and no host name resolving), waits for
// the editor to render, runs the query from the address bar and reads the answer. Run by
// tests/api/browser.rs.
//
//   node graphiql.mjs <api-url> [screenshot.png]
//       Prints one JSON line on stdout:
//         {"elsewhere": [urls refused], "requests": n, "headers": "...", "answer": "..."}
//       `headers` is the headers editor's text, `answer` the response pane's. Exits 0
//       when the page rendered and answered, 1 otherwise or after 30 s.
//
// Chromium: $CHROMIUM, else /usr/bin/chromium.

import { chromium } from 'playwright-core';

const TIMEOUT_MS = 30_000;
const [api, screenshot] = process.argv.slice(2);
if (!api) {
  console.error('usage: node graphiql.mjs <api-url> [screenshot.png]');
  process.exit(2);
}
const origin = new URL(api).origin;
let browser;
const timer = setTimeout(() => fail(new Error(`no result within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);

let page;
async function fail(error) {
  console.error(`graphiql.mjs: ${error?.stack ?? error}`);
  if (page && screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
  if (page) console.error(`page text: ${await page.innerText('body').catch(() => '?')}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // No name resolves (a CDN could not be reached even if a request got past the route
    // below); the API is addressed by IP.
    args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const elsewhere = [];
  let requests = 0;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      requests += 1;
      return route.continue();
    }
    elsewhere.push(url);
    return route.abort('internetdisconnected');
  });
  page = await context.newPage();
  page.on('console', (message) => console.error(`page: ${message.text()}`));
  page.on('pageerror', (error) => console.error(`page error: ${error}`));
  const query = '{ __typename }';
  await page.goto(`${api}/graphql?query=${encodeURIComponent(query)}`);
  await page.waitForSelector('.graphiql-container .CodeMirror', { timeout: 15_000 });
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => document.querySelector('.result-window')?.innerText.includes('__typename'),
    null,
    { timeout: 15_000 },
  );
  const answer = await page.locator('.result-window').innerText();
  // The headers editor is open from the start (`defaultEditorToolsVisibility`).
  const headers = await page.locator('.graphiql-editor-tool').innerText();
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ elsewhere, requests, headers, answer }));
  clearTimeout(timer);
  await browser.close();
}

main().catch(fail);
