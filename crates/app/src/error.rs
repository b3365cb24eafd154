//! The one error of the application layer. Front ends map it, each in one place: the web to a
//! status and a page or JSON body, the command line to an exit status, the wire to a SQLSTATE.
//! An internal error carries only a reference; its cause is logged here, where it is known.

use burnrate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing in the caller's organization — or one they may not know exists (S13).
    #[error("Not found.")]
    NotFound,
    /// The caller may not do this; the message says what it needs.
    #[error("{0}")]
    Forbidden(String),
    /// An input was wrong: `field` names it, `message` says what is wrong in a sentence a person
    /// reads (it names the field too).
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// The world is not in a state that allows it (the last owner, a decided request, a name taken).
    #[error("{0}")]
    Conflict(String),
    /// Something failed on our side; the cause was logged with this reference.
    #[error("Something went wrong on our side. The error was logged with reference {0}.")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { field, message: message.into() }
    }

    /// An internal failure: logs `cause` with a fresh reference and returns the error that shows
    /// only the reference.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::error!(reference, error = %cause, "internal error");
        Error::Internal(reference)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Error::NotFound,
            StoreError::Conflict(what) => Error::Conflict(format!("{what} already exists.")),
            other => Error::internal(other),
        }
    }
}

impl From<burnrate_crypto::CryptoError> for Error {
    fn from(e: burnrate_crypto::CryptoError) -> Self {
        StoreError::Crypto(e).into()
    }
}
