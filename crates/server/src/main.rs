//! `prima`: the PRIMA Partner API server and its operator commands.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: a response is built from many small allocations freed together, often on
/// another worker thread; glibc's allocator spent a sixth of the server's CPU on them, part
/// of it waiting on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = prima_server::config::Cli::parse();
    match prima_server::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            // 1 is `prima check` finding discrepancies; 2 is "could not do the job".
            std::process::ExitCode::from(2)
        }
    }
}
