//! The `burnrate` binary: parses the command line and the settings, runs the command.
//! Exit status: 0 on success, 2 on bad usage or configuration (the message names the setting),
//! 1 on other failures.

use std::process::ExitCode;

use burnrate::cli::Cli;
use burnrate::{Failure, settings};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    burnrate_web::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let sources = match settings::Sources::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return exit(Err(Failure::Config(e))),
    };
    // Error reports start before anything can fail or log, and stop (sending what is queued)
    // before the runtime that sends them: `_reporter` is dropped first.
    let _reporter = match start_reporting(&sources, runtime.handle().clone()) {
        Ok(r) => r,
        Err(e) => return exit(Err(e)),
    };
    exit(runtime.block_on(burnrate::run(sources, cli.command)))
}

/// Logs go to standard error through the scrubber (S19); with `BURNRATE_SENTRY_DSN`, errors and
/// warnings also become Sentry events, scrubbed the same way.
fn start_reporting(
    sources: &settings::Sources,
    runtime: tokio::runtime::Handle,
) -> Result<Option<burnrate_report::Reporter>, Failure> {
    use secrecy::ExposeSecret as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let reporter = match sources.sentry_dsn()? {
        Some(dsn) => Some(
            burnrate_report::Reporter::start(dsn.expose_secret(), env!("CARGO_PKG_VERSION"), runtime).map_err(|e| {
                Failure::Config(settings::ConfigError {
                    setting: "BURNRATE_SENTRY_DSN".into(),
                    message: e.to_string().trim_start_matches("BURNRATE_SENTRY_DSN: ").into(),
                })
            })?,
        ),
        None => None,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(burnrate_report::ScrubbedStderr))
        .with(reporter.is_some().then(burnrate_report::sentry_layer))
        .init();
    Ok(reporter)
}

fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("configuration error: {}", burnrate_report::scrub(&e.to_string()));
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {}", burnrate_report::scrub(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
