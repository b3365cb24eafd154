//! The command line: what `burnrate` accepts, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "burnrate", version, about = "Self-hosted AI-spend platform")]
pub struct Cli {
    /// TOML settings file; `BURNRATE_*` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Private networks an organization's webhooks, provider base URLs and database sources may
    /// reach: granted by the operator, inside BURNRATE_EGRESS_ALLOW.
    Egress {
        #[command(subcommand)]
        command: EgressCommand,
    },
    /// The instance's price catalogue, which synced usage is priced with.
    Prices {
        #[command(subcommand)]
        command: PricesCommand,
    },
}

#[derive(Subcommand)]
pub enum PricesCommand {
    /// Compare a catalogue (JSON, as `scripts/prices-snapshot FILE` writes it) with the current
    /// one and print what it adds, removes and reprices; with --apply, make it the instance's
    /// (recorded in every organization's audit log). Usage synced from then on is priced with it.
    Import {
        file: std::path::PathBuf,
        #[arg(long)]
        apply: bool,
    },
    /// Which catalogue prices usage now.
    Show,
}

#[derive(Subcommand)]
pub enum EgressCommand {
    /// Let one organization reach a private network (`10.20.0.0/16`, `10.20.3.4/32:5432`).
    Grant {
        /// Organization name or id.
        #[arg(long)]
        org: String,
        network: String,
    },
    /// Take a granted network back.
    Revoke {
        /// Organization name or id.
        #[arg(long)]
        org: String,
        network: String,
    },
    /// The networks granted, to one organization or to each.
    List {
        /// Organization name or id.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum OperatorCommand {
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
pub struct OperatorLogin {
    /// The operator's email.
    #[arg(long = "operator", value_name = "EMAIL")]
    pub email: String,
    /// The current code of the operator's authenticator app.
    #[arg(long, value_name = "CODE")]
    pub code: String,
    /// Read the operator's password from the first line of standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Subcommand)]
pub enum SupportCommand {
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
pub enum KeysCommand {
    /// Print a new random master key as `kid:base64`, for BURNRATE_MASTER_KEYS.
    Generate,
    /// Re-wrap every data key under the first (active) key of BURNRATE_MASTER_KEYS.
    Rotate,
}

#[derive(Subcommand)]
pub enum UserCommand {
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
pub enum AuditCommand {
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
