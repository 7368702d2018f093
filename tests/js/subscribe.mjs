// The `graphql-ws` client, unmodified (the one Apollo Client and urql use), subscribing to
// `bookingChanged` on the PRIMA API. Run by tests/api/graphql_ws_client.rs.
//
//   node subscribe.mjs <ws-url> <token> <venue-id> [events]
//       Subscribes as <token> to the changes of <venue-id> and prints each `next` payload
//       as one JSON line on stdout; exits 0 after [events] of them (default 2), 1 on an
//       error, a close or 20 s without them. Prints `subscribed` on stderr once the
//       connection is acknowledged and the `subscribe` message is sent.
//       The arguments may come from PRIMA_WS_URL, PRIMA_TOKEN, PRIMA_VENUE_ID, PRIMA_EVENTS.
//
//   node subscribe.mjs --unauthorized <ws-url> [token]
//       Connects with <token> (no connection params without one), subscribes, and prints
//       the close the server answers with as one JSON line, {"code":4403,"reason":"..."};
//       exits 0 if the code is 4403 (Forbidden: the connection_init was refused), 1
//       otherwise or after 20 s. Retries are off: the client would retry a 4403.
//
// Diagnostics go to stderr; stdout carries only the results above.

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const TIMEOUT_MS = 20_000;

const QUERY = `subscription($v: [ID!]) {
  bookingChanged(venueIds: $v) { cursor action previousStatus booking { id status } }
}`;

const args = process.argv.slice(2);
const unauthorized = args[0] === '--unauthorized';
if (unauthorized) args.shift();

const url = args[0] ?? process.env.PRIMA_WS_URL;
const token = args[1] ?? process.env.PRIMA_TOKEN;
if (!url) usage('the WebSocket URL is missing');

let client;
let finished = false;

/** Ends the run once: closes the client and exits with `code`. */
function finish(code, message) {
  if (finished) return;
  finished = true;
  if (message) console.error(message);
  clearTimeout(timer);
  // Exit even if the close handshake lingers.
  setTimeout(() => process.exit(code), 1_000).unref();
  process.exitCode = code;
  Promise.resolve(client?.dispose()).finally(() => process.exit(code));
}

function usage(problem) {
  console.error(`subscribe.mjs: ${problem}
usage: node subscribe.mjs <ws-url> <token> <venue-id> [events]
       node subscribe.mjs --unauthorized <ws-url> [token]`);
  process.exit(2);
}

/** A readable description of what a graphql-ws sink's `error` receives. */
function describe(error) {
  if (error && typeof error === 'object' && 'code' in error && 'reason' in error) {
    return `closed with ${error.code} ${error.reason}`;
  }
  if (error instanceof Error) return error.stack ?? error.message;
  return JSON.stringify(error);
}

const timer = setTimeout(
  () => finish(1, `subscribe.mjs: timed out after ${TIMEOUT_MS / 1000} s`),
  TIMEOUT_MS,
);

if (unauthorized) {
  client = createClient({
    url,
    webSocketImpl: WebSocket,
    ...(token ? { connectionParams: { authorization: `Bearer ${token}` } } : {}),
    retryAttempts: 0,
    on: {
      closed: (event) => {
        console.log(JSON.stringify({ code: event.code, reason: event.reason }));
        finish(
          event.code === 4403 ? 0 : 1,
          event.code === 4403 ? undefined : `subscribe.mjs: expected 4403, got ${event.code}`,
        );
      },
    },
  });
  client.subscribe(
    { query: QUERY, variables: {} },
    {
      next: (payload) => finish(1, `subscribe.mjs: unexpected next ${JSON.stringify(payload)}`),
      // The close arrives here too (after `closed`), as the subscription's error.
      error: () => {},
      complete: () => finish(1, 'subscribe.mjs: completed without a close'),
    },
  );
} else {
  const venue = args[2] ?? process.env.PRIMA_VENUE_ID;
  const wanted = Number(args[3] ?? process.env.PRIMA_EVENTS ?? 2);
  if (!token) usage('the token is missing');
  if (!venue) usage('the venue id is missing');
  if (!Number.isInteger(wanted) || wanted < 1) usage('events must be a positive integer');

  let received = 0;
  client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: {
      // The client sends `subscribe` right after this event, in the same turn of the
      // event loop; report once that has happened.
      connected: () => setTimeout(() => console.error('subscribed'), 0),
      closed: (event) => {
        if (received < wanted) {
          finish(1, `subscribe.mjs: closed with ${event.code} ${event.reason} after ${received} events`);
        }
      },
    },
  });
  client.subscribe(
    { query: QUERY, variables: { v: [venue] } },
    {
      next: (payload) => {
        if (finished) return;
        console.log(JSON.stringify(payload));
        received += 1;
        if (received === wanted) finish(0);
      },
      error: (error) => finish(1, `subscribe.mjs: ${describe(error)}`),
      complete: () => finish(1, `subscribe.mjs: completed after ${received} of ${wanted} events`),
    },
  );
}
