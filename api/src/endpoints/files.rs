//! Media files (SPEC §5.10): `POST /v1/files` (JSON with base64 data, or
//! `multipart/form-data` with a `file` part) and `GET /v1/files/{file_id}`
//! (the owner only; another customer's file is 404 like a message).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::files::kind::{FileError, RCS_FILE_BYTES};
use mcmp_engine::files::meta::FileMeta;
use mcmp_engine::files::Upload;
use mcmp_engine::model::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::context::ShardApi;
use crate::http::{self, Body};
use crate::multipart;
use crate::time::{format_rfc3339, now_ms};

/// Largest `POST /v1/files` body: the largest file (1 MiB, RCS) in base64
/// (4/3) with room for the JSON or the form around it. A bigger body is
/// 413 before it is read; a smaller one with a file over its channel's
/// limit is 413 `file_too_large` once decoded.
pub(crate) const MAX_FILE_BODY: u64 = (RCS_FILE_BYTES as u64) * 2;

/// The JSON form of an upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUpload {
    channel: Option<String>,
    name: Option<String>,
    content_type: Option<String>,
    data: Option<String>,
}

/// An upload before its channel is checked.
struct Form {
    channel: Option<String>,
    name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn bad(code: &str, msg: &str) -> Response<Body> {
    http::error(StatusCode::BAD_REQUEST, code, msg)
}

/// `POST /v1/files` → `201 {"file_id","status"}` once the file is durable.
pub(crate) async fn post_file(
    api: &ShardApi,
    claims: &Claims,
    req: Request<Incoming>,
) -> Response<Body> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match http::read_body(req, MAX_FILE_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let form = match multipart::boundary(&content_type) {
        Some(b) => from_multipart(&body, &b),
        None => from_json(&body),
    };
    let form = match form {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let channel_name = form.channel.unwrap_or_default();
    let Some(channel) = Channel::parse(&channel_name.to_ascii_uppercase()) else {
        return bad(
            "invalid_channel",
            &format!("`channel` must be RCS or MMS, not {channel_name:?}"),
        );
    };
    let upload = Upload {
        group_code: claims.grp.clone(),
        client_id: claims.sub.clone(),
        channel,
        name: form.name.unwrap_or_default(),
        content_type: form.content_type,
        data: form.data,
    };
    match api.shard.upload_file(upload).await {
        Ok(meta) => http::json(
            StatusCode::CREATED,
            &json!({"file_id": meta.file_id, "status": meta.shown_status(now_ms())}),
        ),
        Err(e) => file_error(&e),
    }
}

/// The answer to a refused or failed upload.
fn file_error(e: &FileError) -> Response<Body> {
    let status = match e {
        FileError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        FileError::Busy | FileError::Io(_) | FileError::StorageFull => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    if let FileError::Io(detail) = e {
        tracing::error!("storing a media file: {detail}");
    }
    http::error(status, e.code(), &e.to_string())
}

fn from_json(body: &Bytes) -> Result<Form, Response<Body>> {
    let raw: JsonUpload = serde_json::from_slice(body).map_err(|e| {
        let code = if e.to_string().starts_with("unknown field") {
            "unknown_field"
        } else {
            "invalid_json"
        };
        bad(code, &format!("the body is not a file upload: {e}"))
    })?;
    let Some(encoded) = raw.data else {
        return Err(bad("invalid_request", "`data` (base64) is required"));
    };
    let data = STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| bad("invalid_base64", "`data` is not valid base64"))?;
    Ok(Form {
        channel: raw.channel,
        name: raw.name,
        content_type: raw.content_type,
        data,
    })
}

fn from_multipart(body: &Bytes, boundary: &str) -> Result<Form, Response<Body>> {
    let parts = multipart::parse(body, boundary)
        .map_err(|e| bad("invalid_multipart", &format!("the form is malformed: {e}")))?;
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).trim().to_owned())
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return Err(bad("invalid_request", "the form has no `file` part"));
    };
    // A generic type says nothing: the bytes decide.
    let declared = file
        .content_type
        .clone()
        .filter(|t| !t.starts_with("application/octet-stream"));
    Ok(Form {
        channel: text("channel"),
        name: text("name").or_else(|| file.filename.clone()),
        content_type: text("content_type").or(declared),
        data: file.data.to_vec(),
    })
}

/// `GET /v1/files/{file_id}`: the file's record, for its owner only.
pub(crate) async fn get_file(api: &ShardApi, claims: &Claims, id: &str) -> Response<Body> {
    match api.shard.file(id, &claims.grp) {
        Some(meta) => http::json(StatusCode::OK, &file_json(&meta, now_ms())),
        None => http::error(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// The file object of `GET /v1/files/{file_id}`.
pub(crate) fn file_json(m: &FileMeta, now_ms: i64) -> Value {
    json!({
        "file_id": m.file_id,
        "channel": m.channel.as_str(),
        "name": m.name,
        "content_type": m.content_type,
        "size": m.size,
        "status": m.shown_status(now_ms),
        "code": m.code,
        "provider_code": m.provider_code,
        "provider_file_id": m.provider_file_id,
        "expires_at": m.expires_at_ms.map(format_rfc3339),
        "created_at": format_rfc3339(m.created_at_ms),
        "sender": m.sender,
    })
}
