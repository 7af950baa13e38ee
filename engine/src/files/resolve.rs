//! Messages that name stored files (`"attachments":[{"file_id"}]`, SPEC
//! §5.10): each reference is checked against the file store and replaced
//! by what the message carries to its provider — an MMS file's bytes, or
//! an RCS file's id at the provider. A file that is unknown, another
//! customer's, for another channel, not yet registered, failed or expired
//! rejects the message with 3015.

use super::kind::FileError;
use super::SharedFiles;
use crate::codes::ResultCode;
use crate::model::{Attachment, Channel, MessageRequest};

// NOTE: an MMS file's bytes are copied into the message (its WAL record
// and, while in flight, its stored request), as inline images are: the
// message then goes out whatever happens to the file later. Keeping a
// reference instead would need a new accepted-record kind.

/// Largest total of an MMS's images once its files are read (800 KB, as
/// for inline attachments).
pub const MMS_TOTAL_BYTES: usize = 800 * 1024;

/// Why a message's attachments cannot go out: its code and reason.
pub type Refusal = (ResultCode, String);

impl SharedFiles {
    /// Replaces the file references of `req` (a message of `group_code`).
    /// `Ok(Err(_))` rejects the message; `Err(_)` is the store failing
    /// (busy or IO), which fails the whole request.
    pub async fn resolve(
        &self,
        now_ms: i64,
        group_code: &str,
        req: &mut MessageRequest,
    ) -> Result<Result<(), Refusal>, FileError> {
        if !req.attachments.iter().any(|a| a.file_ref_id().is_some()) {
            return Ok(Ok(()));
        }
        let mut out = Vec::with_capacity(req.attachments.len());
        for a in std::mem::take(&mut req.attachments) {
            let Some(file_id) = a.file_ref_id() else {
                out.push(a);
                continue;
            };
            let meta = self.get(file_id);
            let usable = match &meta {
                Some(m) => m.usable(now_ms, group_code, req.channel),
                None => Err(super::meta::Unusable::Unknown),
            };
            let (Ok(()), Some(meta)) = (usable, meta) else {
                let why = usable.err().unwrap_or(super::meta::Unusable::Unknown);
                return Ok(Err((ResultCode::FileNotUsable, why.reason(file_id))));
            };
            match (req.channel, meta.provider_file_id) {
                (Channel::Rcs, Some(provider_id)) => {
                    out.push(Attachment::provider_file(&provider_id))
                }
                (Channel::Rcs, None) => {
                    let why = super::meta::Unusable::Registering;
                    return Ok(Err((ResultCode::FileNotUsable, why.reason(file_id))));
                }
                _ => out.push(Attachment {
                    data: self.read(file_id).await?,
                    name: meta.name,
                    content_type: meta.content_type,
                }),
            }
        }
        let total: usize = out.iter().map(|a| a.data.len()).sum();
        if total > MMS_TOTAL_BYTES {
            let reason = format!("attachments total {total} bytes; the limit is {MMS_TOTAL_BYTES}");
            return Ok(Err((ResultCode::BodyTooLong, reason)));
        }
        req.attachments = out;
        Ok(Ok(()))
    }
}
