//! Exit statuses that mean something, so scripts can branch on them.

use std::process::ExitCode;

use aim_client::ClientError;

/// An error the CLI finds itself, before or without asking aim, with the status it means.
#[derive(Debug, thiserror::Error)]
pub enum Local {
    /// Nothing can be named so (a task id that is not a UUID names no task): exit 3.
    #[error("{0}")]
    NotFound(String),
    /// The command line does not say what to do (no source to verify): exit 2.
    #[error("{0}")]
    Usage(String),
    /// A value the user gave is malformed (a key file that is not one): exit 6.
    #[error("{0}")]
    Invalid(String),
}

/// Turns a parse failure of something the user gave into [`Local::Invalid`] (exit 6).
pub trait OrInvalid<T> {
    fn or_invalid(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> OrInvalid<T> for Result<T, E> {
    fn or_invalid(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| Local::Invalid(format!("{}: {e}", what())).into())
    }
}

/// clap's own errors: a value that is not one of the allowed ones, or malformed, is
/// invalid input (6); anything else about the command line is usage (2); `--help` and
/// `--version` are 0.
pub fn code_for_clap(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => ExitCode::from(6),
        _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
    }
}

/// 0 ok · 1 other error · 2 usage (clap) · 3 not found · 4 conflict (illegal transition,
/// name taken) · 5 not authenticated or not allowed, or an inspected token not active ·
/// 6 invalid input · 7 aim unreachable or unavailable · 8 the audit chain is broken.
pub fn code_for(e: &anyhow::Error) -> ExitCode {
    if e.chain()
        .any(|c| c.is::<crate::commands::token::NotActive>())
    {
        return ExitCode::from(5);
    }
    // Look through any context added on the way up.
    if e.chain().any(|c| c.is::<aim_domain::audit::ChainBreak>()) {
        return ExitCode::from(8);
    }
    if let Some(local) = e.chain().find_map(|c| c.downcast_ref::<Local>()) {
        return ExitCode::from(match local {
            Local::NotFound(_) => 3,
            Local::Usage(_) => 2,
            Local::Invalid(_) => 6,
        });
    }
    let Some(c) = e.chain().find_map(|c| c.downcast_ref::<ClientError>()) else {
        // A file the user named that is not there.
        let missing = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        });
        return ExitCode::from(if missing { 3 } else { 1 });
    };
    ExitCode::from(match c {
        ClientError::Transport { .. } => 7,
        ClientError::Decode(_) => 1,
        ClientError::Api { status, .. } => match status {
            404 => 3,
            409 => 4,
            401 | 403 => 5,
            400 | 413 | 415 | 422 => 6,
            503 => 7,
            _ => 1,
        },
    })
}

/// Whether aim answered 401: the request carried no credential it accepts.
pub fn unauthenticated(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ClientError>(),
            Some(ClientError::Api { status: 401, .. })
        )
    })
}

/// The error and its causes, `: `-separated, each said once: a cause whose text its
/// wrapper already includes (a store error quoting the database's) is not repeated.
pub fn chain_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("store unavailable: {0}")]
        struct Store(#[source] std::io::Error);
        let io = std::io::Error::other("duplicate key value violates unique constraint");
        let e = anyhow::Error::new(Store(io)).context("storing the bootstrap admin");
        assert_eq!(
            super::chain_message(&e),
            "storing the bootstrap admin: store unavailable: duplicate key value violates unique constraint"
        );
    }
}
