//! A message's `attachments` (SPEC §1 MMS, §5.10): inline JPEG images of an
//! MMS (`{"name","content_type","data"}`, base64), or stored media files
//! named by id (`{"file_id"}`, MMS and RCS). A named file is read here as a
//! reference ([`Attachment::file_ref`]); whether it is usable (3015) is
//! decided before accept, where the file store is.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcmp_engine::model::{Attachment, Channel};
use serde::Deserialize;

use super::{field, required, too_long, Fail};

/// Most attachments of an MMS.
pub const MMS_MAX_ATTACHMENTS: usize = 3;
/// Largest decoded MMS attachment (300 KB, counted in KiB as carriers do).
pub const MMS_ATTACHMENT_BYTES: usize = 300 * 1024;
/// Largest decoded total of an MMS's attachments (800 KB).
pub const MMS_TOTAL_BYTES: usize = 800 * 1024;
/// Most files of an RCS message (one rich card's image).
pub const RCS_MAX_FILES: usize = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttachment {
    name: Option<String>,
    content_type: Option<String>,
    data: Option<String>,
    file_id: Option<String>,
}

pub(super) fn check_attachments(
    channel: Channel,
    raws: Option<Vec<RawAttachment>>,
) -> Result<Vec<Attachment>, Fail> {
    let raws = raws.unwrap_or_default();
    match channel {
        Channel::Mms => check_mms(raws),
        Channel::Rcs => check_rcs(raws),
        _ if raws.is_empty() => Ok(Vec::new()),
        _ => Err(field(format!("`attachments` are not used by {channel}"))),
    }
}

fn check_rcs(raws: Vec<RawAttachment>) -> Result<Vec<Attachment>, Fail> {
    if raws.len() > RCS_MAX_FILES {
        return Err(field(format!(
            "{} attachments; RCS takes at most {RCS_MAX_FILES} file",
            raws.len()
        )));
    }
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| match raw {
            RawAttachment {
                file_id: Some(id),
                name: None,
                content_type: None,
                data: None,
            } => Ok(Attachment::file_ref(&id)),
            _ => Err(field(format!(
                "`attachments[{i}]` of an RCS message must be {{\"file_id\"}} (upload it with POST /v1/files)"
            ))),
        })
        .collect()
}

fn check_mms(raws: Vec<RawAttachment>) -> Result<Vec<Attachment>, Fail> {
    if raws.is_empty() {
        return Err(field("MMS needs 1 to 3 `attachments`"));
    }
    if raws.len() > MMS_MAX_ATTACHMENTS {
        return Err(too_long(format!(
            "{} attachments; MMS allows at most {MMS_MAX_ATTACHMENTS}",
            raws.len()
        )));
    }
    let mut out = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        out.push(check_attachment(i, raw)?);
    }
    let total: usize = out.iter().map(|a| a.data.len()).sum();
    if total > MMS_TOTAL_BYTES {
        return Err(too_long(format!(
            "attachments total {total} bytes; the limit is {MMS_TOTAL_BYTES}"
        )));
    }
    Ok(out)
}

fn check_attachment(i: usize, raw: RawAttachment) -> Result<Attachment, Fail> {
    if let Some(id) = raw.file_id {
        if raw.data.is_some() || raw.content_type.is_some() || raw.name.is_some() {
            return Err(field(format!(
                "`attachments[{i}]` has a `file_id`: it takes no `name`, `content_type` or `data`"
            )));
        }
        return Ok(Attachment::file_ref(&id));
    }
    let content_type = required(raw.content_type, &format!("attachments[{i}].content_type"))?;
    let encoded = required(raw.data, &format!("attachments[{i}].data"))?;
    if !content_type.eq_ignore_ascii_case("image/jpeg") {
        return Err(field(format!(
            "`attachments[{i}].content_type` must be image/jpeg"
        )));
    }
    // Reject oversized data before decoding it (4 base64 chars = 3 bytes).
    if encoded.len() / 4 * 3 > MMS_ATTACHMENT_BYTES + 3 {
        return Err(too_long(format!(
            "`attachments[{i}]` is over {MMS_ATTACHMENT_BYTES} bytes"
        )));
    }
    let data = STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| field(format!("`attachments[{i}].data` is not valid base64")))?;
    if data.len() > MMS_ATTACHMENT_BYTES {
        return Err(too_long(format!(
            "`attachments[{i}]` is {} bytes; the limit is {MMS_ATTACHMENT_BYTES}",
            data.len()
        )));
    }
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(field(format!(
            "`attachments[{i}].data` is not a JPEG image"
        )));
    }
    Ok(Attachment {
        name: raw.name.unwrap_or_default(),
        content_type: "image/jpeg".to_owned(),
        data,
    })
}
