// Apollo Client 4, unmodified, against a PRIMA server: automatic persisted queries
// (PersistedQueryLink) over batched HTTP (BatchHttpLink), as a dashboard would set it up.
// Run by tests/api/persisted.rs.
//
//   node apollo.mjs <graphql-url> <token>
//       Sends two new queries at once (one batch, by hash only: the server does not know
//       them, so the link sends them again with their documents), then the first again
//       (by hash only: now known). Prints one JSON line on stdout:
//         {"answers": [...data...], "requests": [[{"hash": bool, "document": bool}, ...], ...]}
//       one inner list per HTTP request, one entry per operation in it. Exits 0 when all
//       three queries were answered, 1 otherwise or after 20 s.

import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createHash } from 'node:crypto';

const [uri, token] = process.argv.slice(2);
if (!uri || !token) {
  console.error('usage: node apollo.mjs <graphql-url> <token>');
  process.exit(2);
}
setTimeout(() => {
  console.error('apollo.mjs: no answers within 20 s');
  process.exit(1);
}, 20_000).unref();

const requests = [];
async function recordingFetch(url, init) {
  const body = JSON.parse(init.body);
  requests.push((Array.isArray(body) ? body : [body]).map((operation) => ({
    hash: Boolean(operation.extensions?.persistedQuery?.sha256Hash),
    document: typeof operation.query === 'string' && operation.query.length > 0,
  })));
  return fetch(url, init);
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new PersistedQueryLink({ sha256 }).concat(new BatchHttpLink({
    uri,
    fetch: recordingFetch,
    headers: { authorization: `Bearer ${token}` },
    batchMax: 10,
    batchInterval: 20,
  })),
});

// Operation names no earlier run used, so the server has not seen these documents.
const unique = `${process.pid}_${Date.now()}`;
const first = gql(`query First_${unique} { me { user { email } } }`);
const second = gql(`query Second_${unique} { __typename }`);
try {
  const [a, b] = await Promise.all([
    client.query({ query: first, fetchPolicy: 'network-only' }),
    client.query({ query: second, fetchPolicy: 'network-only' }),
  ]);
  const again = await client.query({ query: first, fetchPolicy: 'network-only' });
  console.log(JSON.stringify({ answers: [a.data, b.data, again.data], requests }));
  process.exit(0);
} catch (error) {
  console.error(`apollo.mjs: ${error?.stack ?? error}`);
  console.error(JSON.stringify({ requests }));
  process.exit(1);
}
