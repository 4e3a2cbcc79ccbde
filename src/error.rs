//! The umbrella error type.

use crate::failure::Failure;
use crate::names::InvalidName;
use crate::payload::PayloadError;

/// Errors netsvc returns at its edges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A name, group, subject or pattern was refused.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// A payload was not of the expected type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A request failed.
    #[error(transparent)]
    Failure(#[from] Failure),
    /// A cron expression could not be parsed.
    #[error("invalid cron expression {expression:?}: {reason}")]
    Cron {
        /// The expression.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
}
