//! The per-transport mapping tables from carrier and provider codes into the
//! unified result codes, in one readable form for operators: as Markdown in
//! `docs/RESULT_CODES.md` (checked against the code by a test) and as JSON
//! at `GET /admin/v1/result-codes`.

use serde_json::{json, Value};

use crate::codes::ResultCode;
use crate::sender::http::PROVIDER_CODES;
use crate::sender::smpp::receipt::{OTHER_STATUS, RECEIPT_ERRORS, RECEIPT_STATS, SUBMIT_STATUSES};

/// Every table as JSON.
pub fn json() -> Value {
    let codes: Vec<Value> = ResultCode::ALL
        .iter()
        .map(|c| json!({"code": c.as_u16(), "meaning": c.description()}))
        .collect();
    let receipts: Vec<Value> = RECEIPT_STATS
        .iter()
        .map(|m| json!({"stat": m.stat, "message_state": m.message_state, "code": m.code.map(|c| c.as_u16())}))
        .collect();
    let errors: Vec<Value> = RECEIPT_ERRORS
        .iter()
        .map(|m| json!({"err": m.err, "meaning": m.meaning, "code": m.code.as_u16()}))
        .collect();
    let submits: Vec<Value> = SUBMIT_STATUSES
        .iter()
        .chain(std::iter::once(&OTHER_STATUS))
        .map(|m| json!({"command_status": m.name, "code": m.code.as_u16(), "retry": m.retry, "slow_down": m.slow_down}))
        .collect();
    let provider: Vec<Value> = PROVIDER_CODES
        .iter()
        .map(|(p, c)| json!({"provider_code": p, "code": c.as_u16()}))
        .collect();
    json!({
        "codes": codes,
        "smpp": {"receipt_stats": receipts, "receipt_errors": errors, "submit_statuses": submits},
        "http": {"provider_codes": provider},
        "smtp": {"250": 2000, "4xx": "retry, then 5006", "5xx on RCPT": 5001, "5xx on MAIL/DATA": 5003},
    })
}

/// The per-transport tables as Markdown.
pub fn markdown() -> String {
    let mut out = String::from("### SMPP receipts (`deliver_sm` stat → code)\n\n| stat | message_state | code |\n| --- | --- | --- |\n");
    for m in RECEIPT_STATS {
        let code = m.code.map_or("not final (ignored)".to_string(), |c| {
            c.as_u16().to_string()
        });
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            m.stat, m.message_state, code
        ));
    }
    out.push_str("\n### SMPP receipt `err:` values (refine a failed receipt's code)\n\n| err | meaning | code |\n| --- | --- | --- |\n");
    for m in RECEIPT_ERRORS {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            m.err,
            m.meaning,
            m.code.as_u16()
        ));
    }
    out.push_str("\n### SMPP `submit_sm_resp` command_status → code\n\n| command_status | code | retry | slows down |\n| --- | --- | --- | --- |\n");
    for m in SUBMIT_STATUSES.iter().chain(std::iter::once(&OTHER_STATUS)) {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            m.name,
            m.code.as_u16(),
            m.retry,
            m.slow_down
        ));
    }
    out.push_str(
        "\n### HTTP providers (result `code` → code)\n\n| provider code | code |\n| --- | --- |\n",
    );
    for (p, c) in PROVIDER_CODES {
        out.push_str(&format!("| {p} | {} |\n", c.as_u16()));
    }
    out
}

#[cfg(test)]
mod tests {
    /// `cargo test -p mcmp-engine print_transport_tables -- --ignored --nocapture`
    /// prints the Markdown to paste into docs/RESULT_CODES.md.
    #[test]
    #[ignore]
    fn print_transport_tables() {
        println!("{}", super::markdown());
    }

    #[test]
    fn documented_transport_tables_match_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/RESULT_CODES.md");
        let doc = std::fs::read_to_string(path).expect("docs/RESULT_CODES.md exists");
        assert!(
            doc.contains(&super::markdown()),
            "docs/RESULT_CODES.md is out of date; paste code_tables::markdown() into it"
        );
        assert!(super::json()["smpp"]["receipt_stats"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
    }
}
