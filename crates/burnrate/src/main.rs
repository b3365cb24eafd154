//! The `burnrate` binary: parses the command line and the settings, wires the crates together.
//! Exit status: 0 on success, 2 on bad usage or configuration (the message names the setting),
//! 1 on other failures.

mod commands;
mod server;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "burnrate", version, about = "Self-hosted AI-spend platform")]
struct Cli {
    /// TOML settings file; `BURNRATE_*` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: web UI and API, and the background workers.
    Serve {
        /// Serve plain HTTP on a non-loopback address because a TLS-terminating proxy is in front.
        #[arg(long)]
        behind_tls_proxy: bool,
    },
    /// Try burnrate on this machine: embedded database, a demo organization and login.
    Demo {
        /// Where the demo keeps its database and keys (reused by the next run).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations (PostgreSQL: as BURNRATE_DATABASE_ADMIN_URL).
    Migrate,
    /// Master keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// User accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Instance operators (staff who run this instance; members of no organization).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Support access to an organization: asked by one operator, consented by the organization,
    /// approved by a second operator; read-only and time-boxed.
    Support {
        #[command(subcommand)]
        command: SupportCommand,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator; prints the TOTP secret for their authenticator app, once.
    Add {
        #[arg(long)]
        email: String,
        /// How the operator is named to customers (audit log, support page); the email's local
        /// part when not given.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an operator who leaves: no login from now on, their sessions end (the record of
    /// their grants stays).
    Remove {
        #[arg(long)]
        email: String,
    },
    /// Give an operator a new authenticator key (a lost phone); prints it, once.
    ResetTotp {
        #[arg(long)]
        email: String,
    },
}

/// Who runs a `support` command: an operator, with password and authenticator code.
#[derive(clap::Args)]
struct OperatorLogin {
    /// The operator's email.
    #[arg(long = "operator", value_name = "EMAIL")]
    email: String,
    /// The current code of the operator's authenticator app.
    #[arg(long, value_name = "CODE")]
    code: String,
    /// Read the operator's password from the first line of standard input.
    #[arg(long, required = true)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum SupportCommand {
    /// Ask for read-only access to an organization about an issue its people reported.
    Request {
        #[command(flatten)]
        login: OperatorLogin,
        /// Organization name or id.
        #[arg(long)]
        org: String,
        /// The customer-reported issue (ticket and summary).
        #[arg(long)]
        issue: String,
        /// How long the access lasts once consented and approved (1 to 24; default 4).
        #[arg(long)]
        hours: Option<i64>,
    },
    /// Approve another operator's request (never your own).
    Approve {
        #[command(flatten)]
        login: OperatorLogin,
        /// The grant's id.
        grant: String,
    },
    /// End a grant now, or withdraw a request.
    Revoke {
        #[command(flatten)]
        login: OperatorLogin,
        grant: String,
    },
    /// List grants, newest first.
    List {
        #[command(flatten)]
        login: OperatorLogin,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random master key as `kid:base64`, for BURNRATE_MASTER_KEYS.
    Generate,
    /// Re-wrap every data key under the first (active) key of BURNRATE_MASTER_KEYS.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account (the first password of a new account; nobody can set an existing one).
    Create {
        /// Organization name or id; created when it does not exist and the role is owner.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "owner")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every organization's hash chain (or one) and name the first entry that fails.
    Verify {
        #[arg(long)]
        org: Option<String>,
    },
    /// Write one organization's log as CSV to standard output (the columns of the UI export),
    /// oldest first.
    Export {
        /// Organization name or id.
        #[arg(long)]
        org: String,
        /// From this day (2026-11-01) or time (RFC 3339) on.
        #[arg(long)]
        from: Option<String>,
        /// Through this day, or before this time.
        #[arg(long)]
        to: Option<String>,
    },
}

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
        Err(e) => return exit(Err(commands::Failure::Config(e))),
    };
    // Error reports start before anything can fail or log, and stop (sending what is queued)
    // before the runtime that sends them: `_reporter` is dropped first.
    let _reporter = match start_reporting(&sources, runtime.handle().clone()) {
        Ok(r) => r,
        Err(e) => return exit(Err(e)),
    };
    exit(runtime.block_on(commands::run(sources, cli.command)))
}

/// Logs go to standard error through the scrubber (S19); with `BURNRATE_SENTRY_DSN`, errors and
/// warnings also become Sentry events, scrubbed the same way.
fn start_reporting(
    sources: &settings::Sources,
    runtime: tokio::runtime::Handle,
) -> Result<Option<burnrate_report::Reporter>, commands::Failure> {
    use secrecy::ExposeSecret as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let reporter = match sources.sentry_dsn()? {
        Some(dsn) => Some(
            burnrate_report::Reporter::start(dsn.expose_secret(), env!("CARGO_PKG_VERSION"), runtime).map_err(|e| {
                commands::Failure::Config(settings::ConfigError {
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

fn exit(result: Result<(), commands::Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::Config(e)) => {
            eprintln!("configuration error: {}", burnrate_report::scrub(&e.to_string()));
            ExitCode::from(2)
        }
        Err(commands::Failure::Other(e)) => {
            eprintln!("error: {}", burnrate_report::scrub(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
