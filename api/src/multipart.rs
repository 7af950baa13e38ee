//! A small `multipart/form-data` reader (RFC 7578) for `POST /v1/files`:
//! the whole body is in memory already (bounded by the caller), so this
//! only splits it at the boundary and reads each part's
//! `Content-Disposition` name and filename and its `Content-Type`. Any
//! body gives parts or an error, never a panic (fuzzed: `fuzz/`
//! `multipart`).
//!
//! ```
//! let body = bytes::Bytes::from_static(
//!     b"--b\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nMMS\r\n--b--\r\n",
//! );
//! let parts = mcmp_api::multipart::parse(&body, "b").expect("a form");
//! assert_eq!((parts[0].name.as_str(), &parts[0].data[..]), ("channel", &b"MMS"[..]));
//! ```

use bytes::Bytes;

/// Most parts read from one body: a file upload has two or three.
pub const MAX_PARTS: usize = 16;

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The form field's name.
    pub name: String,
    /// The file name, for a file part.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Bytes,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// Splits `body` into its parts; `Err` with the reason for a body that is
/// not a well-formed form.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut at = find(body, d, 0).ok_or("no boundary in the body")? + d.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at = skip_crlf(body, at).ok_or("a boundary line does not end with CRLF")?;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a part has no header end")?;
        let head =
            std::str::from_utf8(&body[at..head_end]).map_err(|_| "a part header is not UTF-8")?;
        let start = head_end + 4;
        let end = find(body, format!("\r\n{delimiter}").as_bytes(), start)
            .ok_or("the body has no closing boundary")?;
        parts.push(part(head, body.slice(start..end))?);
        if parts.len() > MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts"));
        }
        at = end + 2 + d.len();
    }
}

fn part(head: &str, data: Bytes) -> Result<Part, String> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                name = param(value, "name");
                filename = param(value, "filename");
            }
            "content-type" => content_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let name = name.ok_or("a part has no Content-Disposition name")?;
    Ok(Part {
        name,
        filename,
        content_type,
        data,
    })
}

/// A parameter of a `Content-Disposition` value (`name="file"`).
fn param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn skip_crlf(body: &[u8], at: usize) -> Option<usize> {
    body[at..].starts_with(b"\r\n").then_some(at + 2)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_a_file_part() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nRCS\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
              Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\n",
        );
        let b = boundary("multipart/form-data; boundary=\"XyZ\"").expect("boundary");
        let parts = parse(&body, &b).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "channel");
        assert_eq!(&parts[0].data[..], b"RCS");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(&parts[1].data[..], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert_eq!(boundary("application/json"), None);
        for body in [
            &b""[..],
            b"--XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            b"--XyZ\r\nno header end",
            b"--XyZ\r\n\r\n\r\nx\r\n--XyZ--",
        ] {
            assert!(parse(&Bytes::copy_from_slice(body), "XyZ").is_err());
        }
    }
}
