//! Every error the API answers with: a status and a JSON body naming what is wrong.

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
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the configured limit.
    #[error("request body is over the limit of {limit} bytes (raise it with --body-limit / XRAY_BODY_LIMIT)")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server is shutting down and could not run the request.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::ShuttingDown
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::ShuttingDown => "unavailable",
            ApiError::Store(StoreError::Query(_) | StoreError::Corrupt(_)) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(StoreError::Query(_) | StoreError::Corrupt(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        HttpResponse::build(status).json(ApiErrorBody {
            code: self.code().to_string(),
            error: self.to_string(),
        })
    }
}
