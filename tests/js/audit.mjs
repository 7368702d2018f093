// The `graphql-http` audit suite (the GraphQL-over-HTTP spec's own conformance checks)
// against a PRIMA server. Run by tests/api/over_http.rs.
//
//   node audit.mjs <graphql-url>
//       Runs every audit and prints one JSON line on stdout:
//         {"pass": n, "notice": n, "warn": n, "error": n, "problems": [{"name", "status", "reason"}]}
//       and exits 0 (the test judges the counts), 1 if the audit could not run.

import { serverAudits } from 'graphql-http';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs <graphql-url>');
  process.exit(2);
}

// Statuses: `ok` (passed), `notice`, `warn` (a SHOULD missed), `error` (a MUST missed).
const counts = { pass: 0, notice: 0, warn: 0, error: 0, problems: [] };
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  if (result.status === 'ok') {
    counts.pass += 1;
    continue;
  }
  counts[result.status] += 1;
  counts.problems.push({ name: audit.name, status: result.status, reason: String(result.reason) });
}
console.log(JSON.stringify(counts));
