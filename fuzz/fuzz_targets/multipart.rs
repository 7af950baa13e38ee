//! Fuzzes the `multipart/form-data` reader of `POST /v1/files`
//! ([`mcmp_api::multipart::parse`]): boundary search, part headers,
//! `Content-Disposition` parameters.
//!
//! Byte 0 is the boundary's length (1–16), the next bytes the boundary, the
//! rest the body. Any body may be refused; none may panic, and every part
//! read lies inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcmp_api::multipart::{parse, MAX_PARTS};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16) + 1;
    if rest.len() < n {
        return;
    }
    let (boundary, body) = rest.split_at(n);
    let boundary = String::from_utf8_lossy(boundary);
    let body = bytes::Bytes::copy_from_slice(body);
    if let Ok(parts) = parse(&body, &boundary) {
        assert!(parts.len() <= MAX_PARTS);
        for p in parts {
            assert!(p.data.len() <= body.len());
        }
    }
});
