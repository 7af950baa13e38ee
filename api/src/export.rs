//! `mcmp export` (SPEC §5.4): the final messages of a period, one line per
//! message, as JSON lines or CSV, for billing and analytics.
//!
//! The command asks the running server (`GET /admin/v1/export`, one page
//! of 1,000 at a time, following `next`) with the admin token, so it reads
//! the same history the API serves while the server keeps running.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one comma-separated row per message.
    Csv,
}

impl Format {
    /// `jsonl` or `csv`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// What to export, and from where.
#[derive(Debug, Clone)]
pub struct Export {
    /// The server, `host:port`.
    pub addr: String,
    /// The admin token.
    pub token: String,
    /// From (RFC 3339, inclusive; final time).
    pub since: String,
    /// To (RFC 3339, exclusive).
    pub until: String,
    /// Only this customer.
    pub customer: Option<String>,
    /// Output format.
    pub format: Format,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The server could not be reached or the output not written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server said no (bad times, wrong token, ...).
    #[error("the server answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The answer was not what an MCMP server sends.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

/// The columns, in order (the CSV header and the JSON fields).
/// NOTE: `origin_code` (SPEC §5.11) came last, after the columns that
/// existed before it, so that CSV readers that go by position still work.
pub const COLUMNS: [&str; 15] = [
    "message_id",
    "src_msg_id",
    "group_code",
    "client_id",
    "channel",
    "class",
    "carrier",
    "sender",
    "status",
    "code",
    "parts",
    "price",
    "accepted_at",
    "done_at",
    "origin_code",
];

/// Messages per page asked for.
const PAGE: usize = 1_000;

/// Writes the export to `out`; the number of messages written.
pub fn run(export: &Export, out: &mut dyn Write) -> Result<u64, ExportError> {
    if export.format == Format::Csv {
        writeln!(out, "{}", COLUMNS.join(","))?;
    }
    let mut after = String::new();
    let mut written = 0;
    loop {
        let mut path = format!(
            "/admin/v1/export?since={}&until={}&limit={PAGE}&after={}",
            encode(&export.since),
            encode(&export.until),
            encode(&after)
        );
        if let Some(c) = &export.customer {
            path.push_str(&format!("&customer={}", encode(c)));
        }
        let page = get(&export.addr, &path, &export.token)?;
        let rows = page["messages"]
            .as_array()
            .ok_or_else(|| ExportError::Protocol("no `messages` in the page".into()))?;
        for row in rows {
            match export.format {
                Format::Jsonl => writeln!(out, "{row}")?,
                Format::Csv => writeln!(out, "{}", csv_row(row))?,
            }
            written += 1;
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => return Ok(written),
        }
    }
}

/// One CSV row: the columns in order, quoted where needed, null as empty.
fn csv_row(row: &Value) -> String {
    let cells: Vec<String> = COLUMNS
        .iter()
        .map(|c| match &row[*c] {
            Value::Null => String::new(),
            Value::String(s) => csv_cell(s),
            other => csv_cell(&other.to_string()),
        })
        .collect();
    cells.join(",")
}

fn csv_cell(s: &str) -> String {
    match s.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", s.replace('"', "\"\"")),
        false => s.to_string(),
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b':' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One `GET` with the admin token (HTTP/1.1, `Connection: close`); the
/// JSON body of a 200.
fn get(addr: &str, path: &str, token: &str) -> Result<Value, ExportError> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ExportError::Protocol("no end of headers".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return Err(ExportError::Protocol("chunked answer".into()));
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ExportError::Protocol("no status line".into()))?;
    let body = &raw[split + 4..];
    if status != 200 {
        let body = String::from_utf8_lossy(body).into_owned();
        return Err(ExportError::Refused { status, body });
    }
    serde_json::from_slice(body).map_err(|e| ExportError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_leaves_nulls_empty() {
        let row = serde_json::json!({"message_id": "00a", "src_msg_id": "a,\"b\"", "carrier": null, "code": 2000, "price": 9});
        let line = csv_row(&row);
        assert_eq!(line, "00a,\"a,\"\"b\"\"\",,,,,,,,2000,,9,,,");
        assert_eq!(
            encode("2026-11-30T00:00:00+09:00"),
            "2026-11-30T00:00:00%2B09:00"
        );
    }
}
