#!/usr/bin/env node
// The peer benchmark: PRIMA against PostGraphile 4 on the same PostgreSQL database.
//
// Starts both servers on free ports, logs in to PRIMA, checks that each workload answers the
// same rows in the same order on both, then runs the workloads interleaved with autocannon
// (per round and workload: PRIMA, then PostGraphile) and prints req/s, p99, the CPU per
// request of each server and of PostgreSQL, and the ratios. See bench/README.md.
//
//   npm ci --prefix bench/peer
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/prima_peer PRIMA_BIN=target/release/prima \
//     node bench/peer/run.mjs
//
// Knobs (environment): DATABASE_URL, PRIMA_BIN, ROUNDS (3), DURATION (seconds, 10),
// CONNECTIONS (8), WARMUP (seconds, 2), POOL (database connections of each server, 10),
// WORKLOADS (e.g. "W1,W3"; default all three).

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const env = process.env;
const DATABASE_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/prima_peer';
const PRIMA_BIN = path.resolve(env.PRIMA_BIN ?? path.join(here, '../../target/release/prima'));
const ROUNDS = int('ROUNDS', 3);
const DURATION = int('DURATION', 10);
const CONNECTIONS = int('CONNECTIONS', 8);
const WARMUP = int('WARMUP', 2);
const POOL = int('POOL', 10);
const WORKLOADS = (env.WORKLOADS ?? 'W1,W2,W3').split(',').map((s) => s.trim());
const OWNER = { email: 'owner@prima.demo', password: 'prima-demo' };
const START_TIMEOUT_MS = 120_000;

function int(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: not a whole number`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Processes: both servers are children of this one and die with it.

const children = [];
let cleaning = false;

function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping both servers`);
    cleanup();
    process.exit(130);
  });
}

function start(name, command, args, extraEnv, logDir) {
  const logPath = path.join(logDir, `${name}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(command, args, {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.logPath = logPath;
  child.label = name;
  child.on('exit', (code, signal) => {
    if (!cleaning) {
      console.error(`${name} exited (${signal ?? code}) during the benchmark; its log: ${logPath}`);
      cleanup();
      process.exit(1);
    }
  });
  children.push(child);
  return child;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function post(url, body, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text };
}

/// Polls until the server answers a GraphQL request (or fails when it exits or times out).
async function waitUntilAnswers(child, url) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.label} exited; see ${child.logPath}`);
    try {
      const { status, text } = await post(url, { query: '{ __typename }' });
      if (status === 200 && text.includes('"__typename"')) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${child.label} did not answer within ${START_TIMEOUT_MS / 1000}s; see ${child.logPath}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---------------------------------------------------------------------------------------
// CPU from /proc: utime + stime, in clock ticks.

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function readStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return { comm, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null; // gone
  }
}

function processTicks(pid) {
  const stat = readStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.ticks;
}

/// Every `postgres` process on the machine, and which of them serve our database.
function postgresTicks(database) {
  const all = new Map();
  const ours = new Set();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (!stat || stat.comm !== 'postgres') continue;
    all.set(entry, stat.ticks);
    try {
      // A backend's title: "postgres: <user> <database> <client> <state>".
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (title.split(' ').includes(database)) ours.add(entry);
    } catch {
      // gone
    }
  }
  return { all, ours };
}

/// Ticks spent between two snapshots: processes in both count their difference, processes
/// started in between count all they used; processes that exited in between are lost
/// (both servers keep their pools open, so this is only the occasional reconnect).
function postgresDelta(before, after) {
  let all = 0;
  let ours = 0;
  for (const [pid, ticks] of after.all) {
    const spent = ticks - (before.all.get(pid) ?? 0);
    all += spent;
    if (after.ours.has(pid)) ours += spent;
  }
  return { all, ours };
}

const msOfTicks = (ticks) => (ticks * 1000) / CLK_TCK;

/// Process time of the whole machine (every core): user, nice and system. Interrupt and
/// softirq time (the loopback network's packets, mostly) is not charged to any process, so it
/// is left out here as it is left out of each process's figures.
function machineBusyTicks() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system] = fields.map(Number);
  return user + nice + system;
}

// ---------------------------------------------------------------------------------------
// The workloads: the same rows and fields on both servers, each side's answer reduced to
// one comparable shape (ids, order, and the values of scalar fields).

/// "120.50" (PRIMA's Money.amount) as integer cents, the unit of the bigint fee columns
/// PostGraphile returns ("12050").
function cents(amount) {
  if (amount === null || amount === undefined) return null;
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(amount));
  if (!match) throw new Error(`not a decimal amount: ${amount}`);
  const [, sign, whole, fraction = ''] = match;
  if (fraction.length > 2 && /[^0]/.test(fraction.slice(2))) {
    throw new Error(`amount finer than a cent: ${amount}`);
  }
  const value = BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0').slice(0, 2));
  return (sign ? -value : value).toString();
}

/// A timestamp as seconds since the epoch with nine fraction digits, whatever its offset.
function instant(text) {
  if (text === null || text === undefined) return null;
  const match = /^(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(text);
  if (!match) throw new Error(`not a timestamp: ${text}`);
  const [, base, fraction = '', offset] = match;
  const seconds = Date.parse(`${base}${offset}`) / 1000;
  if (!Number.isFinite(seconds)) throw new Error(`not a timestamp: ${text}`);
  return `${seconds}.${fraction.padEnd(9, '0')}`;
}

const idOf = (object) => (object ? object.id : null);

const bookingFields = [
  'id diners bookingTime durationMinutes specialRequests type source status',
  'baseFee { amount } platformFee { amount } totalFee { amount } promoterCommission { amount }',
  'confirmedAt completedAt createdAt',
].join(' ');
const pgBookingFields = [
  'id diners bookingTime durationMinutes specialRequests type source status',
  'baseFee platformFee totalFee promoterCommission confirmedAt completedAt createdAt',
].join(' ');

function w3Row(b, money) {
  return {
    id: b.id,
    diners: b.diners,
    bookingTime: instant(b.bookingTime),
    durationMinutes: b.durationMinutes,
    specialRequests: b.specialRequests,
    type: b.type,
    source: b.source,
    status: b.status,
    baseFee: money(b.baseFee),
    platformFee: money(b.platformFee),
    totalFee: money(b.totalFee),
    promoterCommission: money(b.promoterCommission),
    confirmedAt: instant(b.confirmedAt),
    completedAt: instant(b.completedAt),
    createdAt: instant(b.createdAt),
  };
}

function workloads(venueId) {
  return {
    W1: {
      title: "W1 portfolio: owner's venues (first 10), 50 bookings each with guest, promoter, transactions and payout",
      prima: {
        query: `query W1 { venues(first: 10) { nodes { id bookings(first: 50) { nodes {
          id guest { id } promoter { id } transactions { id payout { id } } } } } } }`,
        shape: (d) =>
          d.venues.nodes.map((v) => ({
            id: v.id,
            bookings: v.bookings.nodes.map((b) => ({
              id: b.id,
              guest: idOf(b.guest),
              promoter: idOf(b.promoter),
              transactions: b.transactions.map((t) => ({ id: t.id, payout: idOf(t.payout) })),
            })),
          })),
      },
      // PostGraphile has no access checks: the condition selects the owner's venues (every
      // venue that does not require approval; the runner checks that they are the same).
      postgraphile: {
        query: `query W1 { allVenues(first: 10, orderBy: [NAME_ASC, ID_ASC], condition: { requireApproval: false }) {
          nodes { id bookingsByVenueId(first: 50, orderBy: [BOOKING_TIME_ASC, ID_ASC]) { nodes {
          id guestByGuestId { id } promoterByPromoterId { id }
          transactionsByBookingId(orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { id payoutByPayoutId { id } } } } } } } }`,
        shape: (d) =>
          d.allVenues.nodes.map((v) => ({
            id: v.id,
            bookings: v.bookingsByVenueId.nodes.map((b) => ({
              id: b.id,
              guest: idOf(b.guestByGuestId),
              promoter: idOf(b.promoterByPromoterId),
              transactions: b.transactionsByBookingId.nodes.map((t) => ({
                id: t.id,
                payout: idOf(t.payoutByPayoutId),
              })),
            })),
          })),
      },
      describe: (shape) => {
        const bookings = shape.flatMap((v) => v.bookings);
        const transactions = bookings.flatMap((b) => b.transactions);
        return `${shape.length} venues, ${bookings.length} bookings, ${transactions.length} transactions (${transactions.filter((t) => t.payout).length} paid out)`;
      },
      rows: (shape) => shape.flatMap((v) => v.bookings).length,
    },
    W2: {
      title: 'W2 one venue by id, 20 bookings with guest first/last name and total fee',
      prima: {
        query: `query W2($venue: ID!) { venue(id: $venue) { id bookings(first: 20) { nodes {
          id guest { id firstName lastName } totalFee { amount } } } } }`,
        variables: { venue: venueId },
        shape: (d) => ({
          id: d.venue.id,
          bookings: d.venue.bookings.nodes.map((b) => ({
            id: b.id,
            guest: { id: b.guest.id, firstName: b.guest.firstName, lastName: b.guest.lastName },
            totalFee: cents(b.totalFee.amount),
          })),
        }),
      },
      postgraphile: {
        query: `query W2($venue: UUID!) { venueById(id: $venue) { id bookingsByVenueId(first: 20, orderBy: [BOOKING_TIME_ASC, ID_ASC]) {
          nodes { id guestByGuestId { id firstName lastName } totalFee } } } }`,
        variables: { venue: venueId },
        shape: (d) => ({
          id: d.venueById.id,
          bookings: d.venueById.bookingsByVenueId.nodes.map((b) => ({
            id: b.id,
            guest: {
              id: b.guestByGuestId.id,
              firstName: b.guestByGuestId.firstName,
              lastName: b.guestByGuestId.lastName,
            },
            totalFee: String(b.totalFee),
          })),
        }),
      },
      describe: (shape) => `venue ${shape.id}, ${shape.bookings.length} bookings`,
      rows: (shape) => shape.bookings.length,
    },
    W3: {
      title: 'W3 100 COMPLETED bookings of one venue, 15 scalar fields each',
      prima: {
        query: `query W3($venue: ID!) { venue(id: $venue) { id bookings(first: 100, filter: { statuses: [COMPLETED] }) {
          nodes { ${bookingFields} } } } }`,
        variables: { venue: venueId },
        shape: (d) => ({
          id: d.venue.id,
          bookings: d.venue.bookings.nodes.map((b) => w3Row(b, (m) => (m ? cents(m.amount) : null))),
        }),
      },
      postgraphile: {
        query: `query W3($venue: UUID!) { venueById(id: $venue) { id bookingsByVenueId(first: 100,
          orderBy: [BOOKING_TIME_ASC, ID_ASC], condition: { status: "COMPLETED" }) { nodes { ${pgBookingFields} } } } }`,
        variables: { venue: venueId },
        shape: (d) => ({
          id: d.venueById.id,
          bookings: d.venueById.bookingsByVenueId.nodes.map((b) =>
            w3Row(b, (m) => (m === null || m === undefined ? null : String(m))),
          ),
        }),
      },
      describe: (shape) => `venue ${shape.id}, ${shape.bookings.length} bookings`,
      rows: (shape) => shape.bookings.length,
    },
  };
}

/// The first place where two shapes differ, as a path, or null when they are equal.
function firstDifference(a, b, at = '') {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return `${at || '.'}: PRIMA ${JSON.stringify(a)} vs PostGraphile ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${at}: array vs object`;
  if (Array.isArray(a) && a.length !== b.length) {
    const more = firstDifference(a.slice(0, Math.min(a.length, b.length)), b.slice(0, Math.min(a.length, b.length)), at);
    return more ?? `${at}: PRIMA has ${a.length} items, PostGraphile ${b.length}`;
  }
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const found = firstDifference(a[key], b[key], Array.isArray(a) ? `${at}[${key}]` : `${at}.${key}`);
    if (found) return found;
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Measuring.

const noErrors = (body) => body.startsWith('{"data":') && !body.includes('"errors"');

async function fetchShape(server, spec) {
  const { status, text } = await post(server.url, server.body(spec), server.headers);
  if (status !== 200 || !noErrors(text)) {
    throw new Error(`${server.name}: HTTP ${status}: ${text.slice(0, 2000)}`);
  }
  return { shape: spec[server.side].shape(JSON.parse(text).data), text };
}

async function load(server, spec, seconds) {
  return autocannon({
    url: server.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...server.headers },
    body: server.body(spec),
    connections: CONNECTIONS,
    duration: seconds,
    // Every response is checked: a GraphQL error comes with HTTP 200.
    verifyBody: noErrors,
  });
}

async function measure(server, spec) {
  if (WARMUP > 0) await load(server, spec, WARMUP);
  const pgBefore = postgresTicks(server.database);
  const serverBefore = processTicks(server.pid);
  const clientBefore = process.cpuUsage();
  const machineBefore = machineBusyTicks();
  const started = process.hrtime.bigint();
  const result = await load(server, spec, DURATION);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const serverTicks = processTicks(server.pid) - serverBefore;
  const client = process.cpuUsage(clientBefore);
  const machineMs = msOfTicks(machineBusyTicks() - machineBefore);
  const pg = postgresDelta(pgBefore, postgresTicks(server.database));
  const requests = result.requests.total;
  const failures = result.errors + result.timeouts + result.non2xx + result.mismatches;
  if (failures > 0 || requests === 0) {
    throw new Error(
      `${server.name} ${spec.name}: ${requests} requests, ${result.errors} errors, ${result.timeouts} timeouts, ` +
        `${result.non2xx} non-2xx, ${result.mismatches} answers with "errors"`,
    );
  }
  return {
    requests,
    rps: requests / result.duration,
    elapsed,
    p50: result.latency.p50,
    p99: result.latency.p99,
    serverMs: msOfTicks(serverTicks),
    pgMs: msOfTicks(pg.all),
    pgOursMs: msOfTicks(pg.ours),
    clientMs: (client.user + client.system) / 1000,
    // What the rest of the machine used meanwhile, in cores: other work skews the run.
    otherCores: Math.max(0, machineMs - msOfTicks(serverTicks) - msOfTicks(pg.all) - (client.user + client.system) / 1000) / (elapsed * 1000),
  };
}

// ---------------------------------------------------------------------------------------
// Printing.

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);

function summarize(runs) {
  const requests = runs.reduce((sum, r) => sum + r.requests, 0);
  const per = (key) => runs.reduce((sum, r) => sum + r[key], 0) / requests;
  return {
    rps: median(runs.map((r) => r.rps)),
    rpsRounds: runs.map((r) => r.rps),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    p99Rounds: runs.map((r) => r.p99),
    serverMs: per('serverMs'),
    pgMs: per('pgMs'),
    pgOursMs: per('pgOursMs'),
    clientMs: per('clientMs'),
    otherRounds: runs.map((r) => r.otherCores),
    requests,
  };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row, r) => {
      const line = row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
      return r === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------

async function main() {
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'prima-peer-'));
  const database = new URL(DATABASE_URL).pathname.replace(/^\//, '');
  const primaVersion = execFileSync(PRIMA_BIN, ['--version']).toString().trim();
  const pgVersion = require('postgraphile/package.json').version;
  const acVersion = require('autocannon/package.json').version;
  const [primaPort, pgPort] = [await freePort(), await freePort()];

  const prima = start(
    'prima',
    PRIMA_BIN,
    ['serve'],
    {
      DATABASE_URL,
      PRIMA_BIND: `127.0.0.1:${primaPort}`,
      PRIMA_DB_POOL_SIZE: String(POOL),
      PRIMA_RATE_LIMIT_POINTS: '0', // the portfolio query costs ~37,500 of the 1,000,000 points
      PRIMA_TOKEN_SECRET: randomBytes(24).toString('hex'),
      RUST_LOG: env.RUST_LOG ?? 'info', // the server's default
    },
    logDir,
  );
  // PostGraphile 4's documented production flags (bench/README.md says which and why).
  const postgraphile = start(
    'postgraphile',
    process.execPath,
    [
      require.resolve('postgraphile/cli.js'),
      '--connection', DATABASE_URL,
      '--schema', 'public',
      '--host', '127.0.0.1',
      '--port', String(pgPort),
      '--max-pool-size', String(POOL),
      '--retry-on-init-fail',
      '--dynamic-json',
      '--no-setof-functions-contain-nulls',
      '--no-ignore-rbac',
      '--disable-graphiql',
      '--enable-query-batching',
      '--disable-query-log',
      '--legacy-relations', 'omit',
    ],
    { NODE_ENV: 'production' },
    logDir,
  );

  const primaUrl = `http://127.0.0.1:${primaPort}/graphql`;
  const pgUrl = `http://127.0.0.1:${pgPort}/graphql`;
  await Promise.all([waitUntilAnswers(prima, primaUrl), waitUntilAnswers(postgraphile, pgUrl)]);

  const login = await post(primaUrl, {
    query: 'mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token } }',
    variables: OWNER,
  });
  const token = JSON.parse(login.text).data?.login?.token;
  if (!token) throw new Error(`PRIMA login failed: ${login.text}`);

  const servers = [
    {
      name: 'PRIMA',
      side: 'prima',
      url: primaUrl,
      pid: prima.pid,
      database,
      headers: { authorization: `Bearer ${token}` },
      body: (spec) => JSON.stringify({ query: spec.prima.query, variables: spec.prima.variables }),
    },
    {
      name: 'PostGraphile',
      side: 'postgraphile',
      url: pgUrl,
      pid: postgraphile.pid,
      database,
      headers: {},
      body: (spec) => JSON.stringify({ query: spec.postgraphile.query, variables: spec.postgraphile.variables }),
    },
  ];
  // W2 and W3 read the owner's first venue in PRIMA's order (name A to Z).
  const first = await post(primaUrl, { query: '{ venues(first: 1) { nodes { id name } } }' }, servers[0].headers);
  const venue = JSON.parse(first.text).data.venues.nodes[0];
  const all = workloads(venue.id);
  const chosen = WORKLOADS.map((name) => {
    if (!all[name]) throw new Error(`unknown workload ${name} (W1, W2, W3)`);
    return { name, ...all[name] };
  });
  const count = await post(pgUrl, { query: '{ allBookings { totalCount } }' });
  const bookings = JSON.parse(count.text).data.allBookings.totalCount;

  console.log(`peer benchmark, ${new Date().toISOString()}`);
  console.log(`  database   ${DATABASE_URL} (${bookings} bookings); W2/W3 venue: ${venue.name} (${venue.id})`);
  console.log(`  PRIMA      ${primaVersion} (${PRIMA_BIN}), pool ${POOL}, pid ${prima.pid}, as ${OWNER.email}`);
  console.log(`  PostGraph. ${pgVersion} (node ${process.version}), pool ${POOL}, pid ${postgraphile.pid}, superuser, no RLS`);
  console.log(`  load       autocannon ${acVersion}: ${CONNECTIONS} connections, ${ROUNDS} rounds x ${DURATION}s per side and workload (after ${WARMUP}s warm-up), ${os.cpus().length} cores`);
  console.log(`  logs       ${logDir}`);
  console.log(`  machine    load average ${loadavg()} at the start (other work on these cores skews every figure)`);

  // 1. Both answer the same rows in the same order.
  for (const spec of chosen) {
    const [a, b] = await Promise.all(servers.map((server) => fetchShape(server, spec)));
    const difference = firstDifference(a.shape, b.shape);
    if (difference) {
      throw new Error(`${spec.name}: the servers answer differently: ${difference}`);
    }
    if (spec.rows(a.shape) === 0) throw new Error(`${spec.name}: no rows; is the database seeded?`);
    spec.check = `${spec.describe(a.shape)}; responses ${a.text.length} / ${b.text.length} bytes`;
    console.log(`  same answer ${spec.name}: ${spec.check}`);
  }

  // 2. Interleaved runs.
  const runs = new Map(chosen.map((spec) => [spec.name, { prima: [], postgraphile: [] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const spec of chosen) {
      for (const server of servers) {
        const run = await measure(server, spec);
        runs.get(spec.name)[server.side].push(run);
        console.error(
          `  round ${round} ${spec.name} ${server.name.padEnd(12)} ${f1(run.rps).padStart(8)} req/s  p50 ${f1(run.p50)} ms  p99 ${f1(run.p99)} ms  ` +
            `${f2(run.serverMs / run.requests)} ms server + ${f2(run.pgMs / run.requests)} ms PostgreSQL per request (${run.requests} requests; rest of the machine ${f2(run.otherCores)} cores)`,
        );
      }
    }
  }

  // 3. The table.
  console.log('');
  const verdicts = [];
  for (const spec of chosen) {
    const a = summarize(runs.get(spec.name).prima);
    const b = summarize(runs.get(spec.name).postgraphile);
    const rpsRatio = a.rps / b.rps;
    const p99Ratio = a.p99 / b.p99;
    console.log(spec.title);
    console.log(`  (${spec.check})`);
    const rows = [['', 'req/s', 'req/s per round', 'p50 ms', 'p99 ms', 'p99 per round', 'server ms/req', 'PostgreSQL ms/req', 'total ms/req', 'autocannon ms/req']];
    for (const [name, s] of [['PRIMA', a], ['PostGraphile', b]]) {
      rows.push([
        name,
        f1(s.rps),
        s.rpsRounds.map(f1).join(' '),
        f1(s.p50),
        f1(s.p99),
        s.p99Rounds.map(f1).join(' '),
        f2(s.serverMs),
        `${f2(s.pgMs)} (${f2(s.pgOursMs)})`,
        f2(s.serverMs + s.pgMs),
        f2(s.clientMs),
      ]);
    }
    console.log(table(rows).replace(/^/gm, '  '));
    console.log(
      `  rest of the machine during each round, in cores: PRIMA ${a.otherRounds.map(f2).join(' ')}; PostGraphile ${b.otherRounds.map(f2).join(' ')}`,
    );
    const met = rpsRatio >= 2 && p99Ratio <= 0.5;
    console.log(
      `  PRIMA/PostGraphile: req/s ${f2(rpsRatio)}x (target >= 2), p99 ${f2(p99Ratio)}x (target <= 0.5): ${met ? 'met' : 'NOT met'}\n`,
    );
    verdicts.push(`${spec.name} req/s ${f2(rpsRatio)}x p99 ${f2(p99Ratio)}x`);
  }
  console.log(`ratios: ${verdicts.join('; ')}`);
  console.log(`load average ${loadavg()} at the end`);
  console.log(
    'req/s and p99: median over the rounds; CPU: utime+stime over the measured runs divided by their requests ' +
      '(PostgreSQL: every postgres process; in brackets the backends of this database only; ' +
      'autocannon: this process, the load generator, on the same cores).',
  );
}

main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((error) => {
    console.error(`peer benchmark failed: ${error.message}`);
    cleanup();
    process.exit(1);
  });
