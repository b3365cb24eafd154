//! burnrate as a library: the command line and its commands, the settings, and the one
//! composition root ([`server`]) that `serve`, `demo` and the test harness all start through.

pub mod cli;
mod commands;
pub mod server;
pub mod settings;

pub use commands::{Failure, run};
