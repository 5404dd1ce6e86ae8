//! Exit statuses that mean something, so scripts can branch on them.

use std::process::ExitCode;

use aim_client::ClientError;

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
    let Some(c) = e.chain().find_map(|c| c.downcast_ref::<ClientError>()) else {
        return ExitCode::from(1);
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
