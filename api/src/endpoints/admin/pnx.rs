//! Admin: the PNX table (number → carrier, SPEC §2.3): CSV loads and
//! lookups.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use mcmp_engine::catalog::table;
use mcmp_engine::routing::pnx::CARRIERS;
use serde_json::json;

use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, store_error, Answer};

/// Largest PNX CSV body.
const PNX_BODY_LIMIT: u64 = 256 << 20;

/// Parses a PNX CSV (`number,carrier` per line; an optional header line;
/// blank lines and `#` comments skipped). The error names the line.
fn parse_pnx_csv(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (number, carrier) = line
            .split_once(',')
            .ok_or_else(|| format!("line {}: expected number,carrier", i + 1))?;
        let (number, carrier) = (
            number.trim().replace('-', ""),
            carrier.trim().to_ascii_uppercase(),
        );
        if i == 0 && !number.bytes().all(|b| b.is_ascii_digit()) {
            continue; // header
        }
        if mcmp_engine::routing::pnx::number_key(&number).is_none() {
            return Err(format!(
                "line {}: {number:?} is not a national number",
                i + 1
            ));
        }
        if !CARRIERS.contains(&carrier.as_str()) {
            return Err(format!(
                "line {}: unknown carrier {carrier:?}; expected SKT, KT, LGT or UNKNOWN",
                i + 1
            ));
        }
        rows.push((number, serde_json::to_vec(&carrier).unwrap_or_default()));
    }
    Ok(rows)
}

/// `POST /pnx` (text/csv).
pub(crate) async fn load_pnx(api: &ShardApi, req: Request<Incoming>) -> Answer {
    let bytes = http::read_body(req, PNX_BODY_LIMIT).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad_request("the CSV is not UTF-8"))?;
    let rows = parse_pnx_csv(text).map_err(|m| bad_request(&m))?;
    let loaded = rows.len();
    let catalog = api.shard.catalog();
    api.shard
        .catalog_write(move |s| {
            s.put_many(table::PNX, &rows)?;
            catalog.invalidate_pnx();
            Ok(())
        })
        .await
        .map_err(store_error)?;
    Ok(http::json(StatusCode::OK, &json!({ "loaded": loaded })))
}

/// `GET /pnx/{number}`.
pub(crate) fn get_pnx(api: &ShardApi, number: &str) -> Answer {
    let number = number.replace('-', "");
    let (carrier, source) = api.shard.snapshot().pnx.lookup(&number);
    Ok(http::json(
        StatusCode::OK,
        &json!({"number": number, "carrier": carrier, "source": source.as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pnx_csv_with_header_comments_and_errors() {
        let rows = parse_pnx_csv("number,carrier\n# ported\n010-1234-5678,kt\n\n01098765432,LGT\n")
            .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, "01012345678");
        assert!(parse_pnx_csv("01012345678,VERIZON")
            .expect_err("bad carrier")
            .contains("line 1"));
        assert!(parse_pnx_csv("01012345678,KT\nabc,KT")
            .expect_err("bad number")
            .contains("line 2"));
        assert!(parse_pnx_csv("01012345678").is_err());
    }
}
