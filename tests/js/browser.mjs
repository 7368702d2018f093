// A dashboard page in a real headless Chromium, served from another origin than the API,
// calling it as the single-page app does: fetch() with a bearer token, and a WebSocket
// speaking graphql-transport-ws. Run by tests/api/browser.rs.
//
//   node browser.mjs <api-url> <email> <password> <venue-id>
//       <api-url> is the server's base, `http://127.0.0.1:8000`. The page is served by this
//       script on 127.0.0.1 (another port, so another origin). It logs in, queries the
//       venue's bookings, subscribes to `bookingChanged` of the venue, and prints
//       `subscribed` on stderr once the subscription is sent; it then waits for one event
//       (the test makes the change) and prints one JSON line on stdout:
//         {"origin": ..., "login": {status, requestId}, "venue": {...},
//          "event": {...}, "refused": "..."}
//       where `refused` is what a page on http://localhost:<port> (an origin the test's
//       server does not allow) got from the same fetch(). Exits 0 when all of that
//       happened, 1 otherwise or after 30 s.
//
// Chromium: $CHROMIUM, else /usr/bin/chromium (Debian's `chromium` package). Diagnostics
// go to stderr; stdout carries only the result above.

import http from 'node:http';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 30_000;
const [api, email, password, venue] = process.argv.slice(2);
if (!api || !email || !password || !venue) {
  console.error('usage: node browser.mjs <api-url> <email> <password> <venue-id>');
  process.exit(2);
}

// The dashboard's code, as the page runs it; `window.dashboard` is what this script calls.
const PAGE_SCRIPT = `
const api = ${JSON.stringify(api)};
async function gql(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const response = await fetch(api + '/graphql', {
    method: 'POST', headers, body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, requestId: response.headers.get('x-request-id'),
           body: await response.json() };
}
let socket, event;
window.dashboard = {
  async login(email, password) {
    const answer = await gql('mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
                             { e: email, p: password });
    window.token = answer.body.data.login.token;
    return { status: answer.status, requestId: answer.requestId };
  },
  async venue(id) {
    const answer = await gql('query($v: ID!) { venue(id: $v) { id bookings(first: 5) { nodes { id status } } } }',
                             { v: id }, window.token);
    return answer.body;
  },
  subscribe(id) {
    return new Promise((resolve, reject) => {
      socket = new WebSocket(api.replace(/^http/, 'ws') + '/graphql/ws', 'graphql-transport-ws');
      event = new Promise((got, failed) => {
        socket.onmessage = (message) => {
          const data = JSON.parse(message.data);
          if (data.type === 'connection_ack') {
            socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: {
              query: 'subscription($v: [ID!]) { bookingChanged(venueIds: $v) { action previousStatus booking { id status } } }',
              variables: { v: [id] } } }));
            resolve();
          } else if (data.type === 'next') {
            got(data.payload);
          } else if (data.type === 'ping') {
            socket.send(JSON.stringify({ type: 'pong' }));
          } else {
            failed(new Error('unexpected message ' + message.data));
          }
        };
        socket.onclose = (close) => {
          const error = new Error('closed ' + close.code + ' ' + close.reason);
          reject(error);
          failed(error);
        };
      });
      socket.onopen = () => socket.send(JSON.stringify({
        type: 'connection_init', payload: { Authorization: 'Bearer ' + window.token } }));
    });
  },
  next() { return event; },
  async probe() {
    try {
      await gql('{ __typename }');
      return 'reached';
    } catch (error) {
      return 'refused: ' + error;
    }
  },
};
`;

const PAGE = `<!doctype html><meta charset="utf-8"><title>PRIMA dashboard (test)</title>
<script>${PAGE_SCRIPT}</script><p>dashboard</p>`;

const timer = setTimeout(() => fail(new Error(`no result within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
let browser;
const pages = http.createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(PAGE);
});

async function fail(error) {
  console.error(`browser.mjs: ${error?.stack ?? error}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}

async function main() {
  await new Promise((listening) => pages.listen(0, '127.0.0.1', listening));
  const port = pages.address().port;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Running as root in a container: Chromium's sandbox needs user namespaces.
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage();
  page.on('console', (message) => console.error(`page: ${message.text()}`));
  const origin = `http://127.0.0.1:${port}`;
  await page.goto(`${origin}/`);
  const login = await page.evaluate(([e, p]) => window.dashboard.login(e, p), [email, password]);
  const venueAnswer = await page.evaluate((v) => window.dashboard.venue(v), venue);
  await page.evaluate((v) => window.dashboard.subscribe(v), venue);
  console.error('subscribed');
  const event = await page.evaluate(() => window.dashboard.next());

  const elsewhere = await browser.newPage();
  elsewhere.on('console', (message) => console.error(`other page: ${message.text()}`));
  await elsewhere.goto(`http://localhost:${port}/`);
  const refused = await elsewhere.evaluate(() => window.dashboard.probe());

  console.log(JSON.stringify({ origin, login, venue: venueAnswer, event, refused }));
  clearTimeout(timer);
  await browser.close();
  pages.close();
}

main().catch(fail);
