//! `prima`: the PRIMA Partner API server and its operator commands.

use std::io::IsTerminal;

use clap::Parser;
use prima_server::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// mimalloc: a response is built from many small allocations freed together, often on
/// another worker thread; glibc's allocator spent a sixth of the server's CPU on them, part
/// of it waiting on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = prima_server::config::Cli::parse();
    let format = cli.log_format;
    logging(format);
    match prima_server::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            // Once, with its causes: a log line for JSON logs (a collector reads them), a
            // plain line otherwise.
            let message = prima_server::cli::describe(&err);
            match format {
                LogFormat::Json => tracing::error!(error = message, "prima failed"),
                LogFormat::Text => eprintln!("error: {message}"),
            }
            // 1 is `prima check` finding discrepancies; 2 is "could not do the job".
            std::process::ExitCode::from(2)
        }
    }
}

/// Log lines go to standard error, filtered by `RUST_LOG` (default `info`).
fn logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => lines.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
