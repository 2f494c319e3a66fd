//! An OTLP/HTTP request body to an `ExportTraceServiceRequest`: gzip undone when the request says
//! so, then protobuf or OTLP JSON (hex ids, int64 as strings) as its content type says, both by
//! the `opentelemetry-proto` crate. It owns reading the body, not what the spans mean.

use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;

/// How a body is encoded (and how its answer is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names; `None` for any other type.
    pub fn of_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A body that is not an export request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// `Content-Encoding: gzip` but not gzip, or larger than allowed once unpacked.
    #[error("the body is not valid gzip: {0}")]
    Gzip(String),
    /// Unpacked, the body is over the limit.
    #[error("the body is over {0} bytes once unpacked")]
    TooLarge(usize),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported Content-Encoding `{0}`: send gzip or no encoding")]
    ContentEncoding(String),
    /// Not an `ExportTraceServiceRequest` in protobuf.
    #[error("the body is not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// Not an `ExportTraceServiceRequest` in OTLP JSON.
    #[error("the body is not an OTLP ExportTraceServiceRequest in JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Undoes `content_encoding` (none, `identity` or `gzip`); the result is at most `limit` bytes.
pub fn unpack<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, DecodeError> {
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            // One byte over the limit tells a body that is too large from one that fits exactly.
            let read = GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::Gzip(e.to_string()))?;
            if read > limit {
                return Err(DecodeError::TooLarge(limit));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(other) => Err(DecodeError::ContentEncoding(other.to_string())),
    }
}

/// Reads an export request in `encoding`.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, DecodeError> {
    Ok(match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)?,
        // Strictly (`http/strict.rs`): a message is a JSON object, never an array of fields.
        Encoding::Json => crate::http::strict::from_slice(body)?,
    })
}

/// Writes an export answer in `encoding`.
pub fn encode(answer: &ExportTraceServiceResponse, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        // A full success is `{}` (the derive would write `"partialSuccess": null`).
        Encoding::Json if answer.partial_success.is_none() => b"{}".to_vec(),
        // Plain data of strings and numbers: serialising it cannot fail.
        Encoding::Json => serde_json::to_vec(answer).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
      "spanId":"eee19b7ec3c1b174","name":"root","kind":1,"startTimeUnixNano":"1544712660000000000",
      "endTimeUnixNano":"1544712661000000000","attributes":[{"key":"xray.input_count","value":{"intValue":"42"}}],
      "status":{}}]}]}]}"#;

    #[test]
    fn otlp_json_has_hex_ids_and_int64_strings() {
        let req = decode(JSON.as_bytes(), Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        let back = encode(
            &ExportTraceServiceResponse {
                partial_success: None,
            },
            Encoding::Json,
        );
        assert_eq!(back, b"{}");
    }

    #[test]
    fn protobuf_and_gzip_round_trip() {
        let req = decode(JSON.as_bytes(), Encoding::Json).unwrap();
        let bytes = req.encode_to_vec();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let packed = gz.finish().unwrap();
        let unpacked = unpack(&packed, Some("gzip"), 1 << 20).unwrap();
        assert_eq!(decode(&unpacked, Encoding::Protobuf).unwrap(), req);
        assert!(matches!(
            unpack(&packed, Some("gzip"), 10),
            Err(DecodeError::TooLarge(10))
        ));
        assert!(matches!(
            unpack(b"not gzip", Some("gzip"), 100),
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(
            unpack(b"x", Some("br"), 100),
            Err(DecodeError::ContentEncoding(_))
        ));
    }

    #[test]
    fn undecodable_bodies_are_errors() {
        assert!(decode(b"\xff\xff\xff", Encoding::Protobuf).is_err());
        assert!(decode(b"{\"resourceSpans\": 3}", Encoding::Json).is_err());
        assert!(
            decode(b"[]", Encoding::Json).is_err(),
            "a message is an object"
        );
        assert_eq!(
            Encoding::of_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::of_content_type("text/plain"), None);
    }
}
