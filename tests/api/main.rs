//! Black-box tests of the PRIMA Partner API: a real server per test on a random port, over
//! its own database (SQLite in memory, or PostgreSQL with TEST_DATABASE_URL).

mod access;
mod admin;
mod auth;
mod bad_input;
mod bookings;
mod browser;
mod cross_origin;
mod field_access;
mod graphql_ws_client;
mod http;
mod incentives;
mod limits;
mod login_throttle;
mod node;
mod order;
mod over_http;
mod payouts;
mod persisted;
mod portfolio;
mod pricing;
mod random_documents;
mod realtime;
mod schema;
mod stress;
mod ws_protocol;
