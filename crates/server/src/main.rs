//! `prima`: the PRIMA Partner API server and its operator commands.

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
