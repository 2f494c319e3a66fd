//! Errors the SDK can report. Recording never fails; only configuration, and delivery in `fail`
//! mode, can.

use std::time::Duration;

/// Something X-Ray could not do.
#[derive(Debug, thiserror::Error)]
pub enum XRayError {
    /// The server could not be reached or refused the events (only reported in `fail` mode).
    #[error("could not deliver events to {endpoint}: {reason}")]
    Delivery {
        /// The server's URL.
        endpoint: String,
        /// What went wrong, last.
        reason: String,
    },
    /// A flush or shutdown did not finish in time.
    #[error("timed out after {0:?} waiting for events to be delivered or spooled")]
    Timeout(Duration),
    /// The background shipper has already been shut down.
    #[error("the X-Ray client has been shut down")]
    ShutDown,
    /// `xray::init` was called after the default client was already set up.
    #[error("the default X-Ray client is already initialised (call xray::init once, first)")]
    AlreadyInitialized,
    /// A configuration value is invalid.
    #[error("invalid X-Ray configuration: {0}")]
    Config(String),
}
