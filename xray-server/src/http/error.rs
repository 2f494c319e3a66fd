//! Every error the API answers with: a status and a JSON body naming what is wrong. A malformed
//! request must be a 4xx with a clear message; a 5xx is only for the server's own failures.

use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use xray_wire::ApiErrorBody;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message names the field and what is accepted.
    #[error("{0}")]
    BadRequest(String),
    /// No API key, or one that is not configured.
    #[error("{0}")]
    Unauthorized(String),
    /// An API key without the scope this request needs.
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("{message}")]
    MethodNotAllowed {
        /// What is wrong and what the path takes.
        message: String,
        /// The methods the path takes, for the `Allow` header.
        allow: String,
    },
    /// The body is over the configured limit.
    #[error("request body is over the limit of {limit} bytes (raise it with --body-limit / XRAY_BODY_LIMIT)")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is of a media type the endpoint does not read; the message names those it does.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server is shutting down and could not run the request.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The request panicked inside the server (a bug): the message names nothing of the request.
    #[error(
        "the server failed on this request: it panicked (a bug; the server's log has the details)"
    )]
    Panicked,
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::ShuttingDown
    }
}

/// Runs `f` on the blocking pool (what every handler's database work goes through). A panic in
/// `f` is this request's 500 `internal`, not a 503 "shutting down" (`web::block` alone cannot
/// tell the two apart); the pool only refuses work when the server is stopping.
pub async fn block<F, R>(f: F) -> Result<R, ApiError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let caught =
        actix_web::web::block(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
            .await?;
    caught.map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        tracing::error!(panic = %what, "a request panicked");
        ApiError::Panicked
    })
}

/// Seconds a client is asked to wait before trying again after a 503.
const RETRY_AFTER_SECS: &str = "1";

impl ApiError {
    /// The `code` of the answer's body and its status, in one table.
    fn kind(&self) -> (&'static str, StatusCode) {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            ApiError::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::MethodNotAllowed { .. } => {
                ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED)
            }
            ApiError::PayloadTooLarge { .. } => {
                ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE)
            }
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            // The database is busy or unreachable (a connection closed under a query too), or
            // the server is stopping: worth trying again soon.
            ApiError::Store(
                StoreError::Unavailable(_)
                | StoreError::Busy(_)
                | StoreError::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)),
            )
            | ApiError::ShuttingDown => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Store(
                StoreError::Query(_)
                | StoreError::Corrupt(_)
                | StoreError::CorruptRollup(_)
                | StoreError::CorruptReasons(_),
            )
            | ApiError::Panicked => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Store(StoreError::StepOfAnotherRun { .. }) => {
                ("conflict", StatusCode::CONFLICT)
            }
        }
    }

    /// The `code` of the answer's body.
    pub(crate) fn code(&self) -> &'static str {
        self.kind().0
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().1
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut res = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECS));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            res.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
        }
        res.json(ApiErrorBody {
            code: self.code().to_string(),
            error: self.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_panic_in_a_request_is_its_own_500_internal_and_the_pool_carries_on() {
        let err = block(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code(), "internal");
        assert!(!err.to_string().contains("boom"), "{err}");
        assert_eq!(block(|| 7).await.unwrap(), 7);
    }
}
