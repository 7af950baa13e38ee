//! What a media file may be (SPEC §5.10): the channels that take files, the
//! image types and size limits of each, and the check of an upload against
//! them. Pure: the API crate decodes the upload, the engine stores it.

use crate::model::Channel;

/// Largest RCS file (1 MiB): the RCS platforms' limit for a rich card's
/// image.
pub const RCS_FILE_BYTES: usize = 1 << 20;

/// Largest MMS file (300 KB, counted in KiB as carriers do; the same limit
/// as an inline MMS attachment).
pub const MMS_FILE_BYTES: usize = 300 * 1024;

/// Why an upload is refused, or could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Files are for `RCS` and `MMS` only.
    #[error("files are for RCS and MMS, not {0}")]
    Channel(String),
    /// Over the channel's size limit (HTTP 413).
    #[error("the file is {size} bytes; {channel} allows at most {limit}")]
    TooLarge {
        /// The channel.
        channel: Channel,
        /// The file's size.
        size: usize,
        /// The channel's limit.
        limit: usize,
    },
    /// No bytes.
    #[error("the file is empty")]
    Empty,
    /// A type the channel does not take.
    #[error("{channel} takes {allowed}, not {given}")]
    Type {
        /// The channel.
        channel: Channel,
        /// The type given (or recognised in the bytes).
        given: String,
        /// What the channel takes.
        allowed: &'static str,
    },
    /// The bytes are not an image of the declared type.
    #[error("the bytes are not a {0} image")]
    Content(String),
    /// Free space on the data disk is below `wal.min-free` (HTTP 503).
    #[error("free space on the data disk is below wal.min-free; the file was not stored")]
    StorageFull,
    /// The file store's queue is full: try again shortly (HTTP 503).
    #[error("the file store is busy; try again shortly")]
    Busy,
    /// Writing the file failed (HTTP 503).
    #[error("storing the file failed: {0}")]
    Io(String),
}

impl FileError {
    /// The machine code of the API's error answer.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Channel(_) => "invalid_channel",
            FileError::TooLarge { .. } => "file_too_large",
            FileError::Empty => "empty_file",
            FileError::Type { .. } => "unsupported_file_type",
            FileError::Content(_) => "file_content_mismatch",
            FileError::StorageFull => "storage_full",
            FileError::Busy => "files_busy",
            FileError::Io(_) => "storage_error",
        }
    }
}

/// The image types a file may have, and the bytes each one starts with.
const SIGNATURES: [(&str, &[u8]); 4] = [
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/gif", b"GIF87a"),
    ("image/gif", b"GIF89a"),
];

/// The channel's size limit and the types it takes.
pub fn limits(channel: Channel) -> Option<(usize, &'static [&'static str])> {
    match channel {
        Channel::Rcs => Some((RCS_FILE_BYTES, &["image/jpeg", "image/png", "image/gif"])),
        Channel::Mms => Some((MMS_FILE_BYTES, &["image/jpeg"])),
        _ => None,
    }
}

/// The type the bytes are, recognised by their first bytes.
pub fn sniff(data: &[u8]) -> Option<&'static str> {
    SIGNATURES
        .iter()
        .find(|(_, magic)| data.starts_with(magic))
        .map(|(t, _)| *t)
}

/// Checks an upload for `channel` and answers its content type: the
/// declared one (`image/jpg` read as `image/jpeg`) if given, else the one
/// the bytes show. Size first (413 whatever the type), then the type, then
/// that the bytes are such an image.
pub fn check(
    channel: Channel,
    declared: Option<&str>,
    data: &[u8],
) -> Result<&'static str, FileError> {
    let Some((limit, allowed)) = limits(channel) else {
        return Err(FileError::Channel(channel.as_str().to_owned()));
    };
    if data.len() > limit {
        let size = data.len();
        return Err(FileError::TooLarge {
            channel,
            size,
            limit,
        });
    }
    if data.is_empty() {
        return Err(FileError::Empty);
    }
    let sniffed = sniff(data);
    let given = match declared.map(normalize) {
        Some(t) => t,
        None => sniffed.map(str::to_owned).unwrap_or_default(),
    };
    let Some(kind) = allowed.iter().copied().find(|t| *t == given) else {
        let allowed = if channel == Channel::Rcs {
            "image/jpeg, image/png or image/gif"
        } else {
            "image/jpeg"
        };
        let given = if given.is_empty() {
            "an unknown type".into()
        } else {
            given
        };
        return Err(FileError::Type {
            channel,
            given,
            allowed,
        });
    };
    if sniffed != Some(kind) {
        return Err(FileError::Content(kind.to_owned()));
    }
    Ok(kind)
}

fn normalize(content_type: &str) -> String {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t == "image/jpg" {
        "image/jpeg".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0000";

    #[test]
    fn rcs_takes_jpeg_png_gif_up_to_one_mib() {
        assert_eq!(
            check(Channel::Rcs, Some("image/jpeg"), JPEG),
            Ok("image/jpeg")
        );
        assert_eq!(check(Channel::Rcs, None, PNG), Ok("image/png"));
        assert_eq!(
            check(Channel::Rcs, Some("image/gif"), b"GIF89a.."),
            Ok("image/gif")
        );
        let mut big = JPEG.to_vec();
        big.resize(RCS_FILE_BYTES + 1, 0);
        assert!(matches!(
            check(Channel::Rcs, Some("image/jpeg"), &big),
            Err(FileError::TooLarge {
                limit: RCS_FILE_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn mms_takes_jpeg_only_up_to_300_kb() {
        assert_eq!(
            check(Channel::Mms, Some("image/jpg"), JPEG),
            Ok("image/jpeg")
        );
        let png = check(Channel::Mms, None, PNG);
        assert_eq!(png.map_err(|e| e.code()), Err("unsupported_file_type"));
        let mut big = JPEG.to_vec();
        big.resize(MMS_FILE_BYTES + 1, 0);
        let err = check(Channel::Mms, None, &big).map_err(|e| e.code());
        assert_eq!(err, Err("file_too_large"));
    }

    #[test]
    fn wrong_bytes_channel_and_empty_are_refused_with_their_codes() {
        let code = |r: Result<&'static str, FileError>| r.map_err(|e| e.code());
        assert_eq!(
            code(check(Channel::Rcs, Some("image/png"), JPEG)),
            Err("file_content_mismatch")
        );
        assert_eq!(
            code(check(Channel::Rcs, Some("text/plain"), b"hi")),
            Err("unsupported_file_type")
        );
        assert_eq!(
            code(check(Channel::Rcs, None, b"hello")),
            Err("unsupported_file_type")
        );
        assert_eq!(
            code(check(Channel::Sms, None, JPEG)),
            Err("invalid_channel")
        );
        assert_eq!(code(check(Channel::Mms, None, b"")), Err("empty_file"));
    }
}
