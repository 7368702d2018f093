//! The `prima` binary's library: configuration, the HTTP server and the CLI commands, kept
//! in a library so the black-box tests can start real servers in-process.

pub mod app;
pub mod cli;
pub mod config;
pub mod cors;
pub mod export;
pub mod fanout;
pub mod graphiql;
pub mod metrics;
pub mod over_http;
pub mod persisted;
pub mod ws;
