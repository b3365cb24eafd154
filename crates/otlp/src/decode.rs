//! An export's bytes into its message: OTLP/HTTP's two encodings, gzip or not, within bounds.

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

/// The largest body taken as sent (compressed or not), and the largest it may inflate to: a
/// batch of the SDKs' default size (512 spans) is far smaller; anything larger is refused
/// before it is read, not after it filled memory.
pub const MAX_BODY_BYTES: usize = 16 << 20;
const MAX_DECODED_BYTES: usize = 64 << 20;

/// OTLP/HTTP's encodings, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters ignored); `None` for any other type.
    pub fn of_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// An export as it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Body<'a> {
    pub encoding: Encoding,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    pub bytes: &'a [u8],
}

/// Why a body is not an export. Messages say where and what kind of fault, never what the
/// body held there.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the body is larger than {limit} bytes{}", if *.inflated { " once decompressed" } else { "" })]
    TooLarge { limit: usize, inflated: bool },
    #[error("the body is not valid gzip")]
    Gzip,
    #[error("the body is not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    Protobuf(String),
    #[error("the body is not an OTLP ExportTraceServiceRequest in JSON: {what} at line {line}, column {column}")]
    Json { what: &'static str, line: usize, column: usize },
}

pub fn decode(body: Body<'_>) -> Result<ExportTraceServiceRequest, DecodeError> {
    if body.bytes.len() > MAX_BODY_BYTES {
        return Err(DecodeError::TooLarge { limit: MAX_BODY_BYTES, inflated: false });
    }
    let inflated;
    let bytes = if body.gzip {
        let mut out = Vec::new();
        let reader = flate2::read::GzDecoder::new(body.bytes);
        // One byte past the cap tells a body at the cap from one beyond it.
        reader.take(MAX_DECODED_BYTES as u64 + 1).read_to_end(&mut out).map_err(|_| DecodeError::Gzip)?;
        if out.len() > MAX_DECODED_BYTES {
            return Err(DecodeError::TooLarge { limit: MAX_DECODED_BYTES, inflated: true });
        }
        inflated = out;
        inflated.as_slice()
    } else {
        body.bytes
    };
    match body.encoding {
        Encoding::Protobuf => {
            // prost's messages name the field and wire type at fault, never field contents.
            ExportTraceServiceRequest::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
        }
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| DecodeError::Json {
            // serde's own message may quote the offending value, which may be content.
            what: match e.classify() {
                serde_json::error::Category::Syntax => "malformed JSON",
                serde_json::error::Category::Eof => "the JSON ends early",
                serde_json::error::Category::Data => "a field of the wrong type or value",
                serde_json::error::Category::Io => "unreadable input",
            },
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// The answer in the request's encoding.
pub fn encode_response(response: &ExportTraceServiceResponse, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}
