//! Carrier outcomes into unified codes (SPEC §3): the two mapping tables the
//! operator reads ([`RECEIPT_STATS`] for delivery receipts,
//! [`SUBMIT_STATUSES`] for `submit_sm_resp` statuses) and the parsing of
//! `deliver_sm` receipts. Pure functions and constant tables, shard-agnostic.
//!
//! A receipt prefers the TLVs `receipted_message_id` (0x001E) and
//! `message_state` (0x0427); what they do not give is read from the
//! conventional text `id:<id> sub:… dlvrd:… submit date:… done date:…
//! stat:<STAT> err:<ERR> text:…`, case-insensitively, any field missing.

use super::codec::{status, Deliver};
use crate::codes::ResultCode;

/// esm_class message-type bits that mark an SMSC delivery receipt.
pub const ESM_RECEIPT: u8 = 0x04;

/// One row of the receipt table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatMapping {
    /// The `stat:` text of a receipt.
    pub stat: &'static str,
    /// The `message_state` TLV value with the same meaning.
    pub message_state: u8,
    /// The unified code of the final outcome; `None` when the state is not
    /// final (the receipt is ignored).
    pub code: Option<ResultCode>,
}

/// Receipt states into unified codes. A `stat` not in this table is not
/// final: the receipt is logged and ignored (the message then ends by the
/// core's report timeout rather than by a guess).
pub const RECEIPT_STATS: &[StatMapping] = &[
    StatMapping {
        stat: "ENROUTE",
        message_state: 1,
        code: None,
    },
    StatMapping {
        stat: "DELIVRD",
        message_state: 2,
        code: Some(ResultCode::Delivered),
    },
    StatMapping {
        stat: "EXPIRED",
        message_state: 3,
        code: Some(ResultCode::ExpiredAtCarrier),
    },
    StatMapping {
        stat: "DELETED",
        message_state: 4,
        code: Some(ResultCode::Undeliverable),
    },
    StatMapping {
        stat: "UNDELIV",
        message_state: 5,
        code: Some(ResultCode::Undeliverable),
    },
    StatMapping {
        stat: "ACCEPTD",
        message_state: 6,
        code: None,
    },
    StatMapping {
        stat: "UNKNOWN",
        message_state: 7,
        code: Some(ResultCode::Undeliverable),
    },
    StatMapping {
        stat: "REJECTD",
        message_state: 8,
        code: Some(ResultCode::RejectedByCarrier),
    },
];

/// One row of the receipt error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrMapping {
    /// The `err:` value (compared as a number: `88` and `088` are equal).
    pub err: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// The unified code it gives a failed receipt instead of its stat's.
    pub code: ResultCode,
}

/// `err:` values that refine a failed receipt's code. SMPP leaves `err:`
/// to each network; these are the values MCMP understands (the SMSC
/// simulator uses them too). A ported-out report re-routes the message
/// once (SPEC §1 Routing).
pub const RECEIPT_ERRORS: &[ErrMapping] = &[ErrMapping {
    err: "088",
    meaning: "number ported out to another carrier",
    code: ResultCode::PortedOut,
}];

/// The code `err` gives a failed receipt, if it is in [`RECEIPT_ERRORS`].
pub fn err_code(err: &str) -> Option<ResultCode> {
    let digits = err.trim_start_matches('0');
    RECEIPT_ERRORS
        .iter()
        .find(|m| m.err.trim_start_matches('0') == digits && !digits.is_empty())
        .map(|m| m.code)
}

/// One row of the submit_sm_resp table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMapping {
    /// command_status.
    pub status: u32,
    /// Its SMPP name.
    pub name: &'static str,
    /// Unified code (the final code when `retry` is false; the code the
    /// core uses if it gives up retrying otherwise).
    pub code: ResultCode,
    /// Whether another attempt may succeed.
    pub retry: bool,
    /// Whether the session pauses submitting (backoff 100 ms doubling to 5 s).
    pub slow_down: bool,
}

/// submit_sm_resp statuses into unified codes; any status not listed is
/// [`OTHER_STATUS`]: 5003 rejected by carrier, final.
pub const SUBMIT_STATUSES: &[StatusMapping] = &[
    StatusMapping {
        status: status::ESME_RTHROTTLED,
        name: "ESME_RTHROTTLED",
        code: ResultCode::ProviderError,
        retry: true,
        slow_down: true,
    },
    StatusMapping {
        status: status::ESME_RMSGQFUL,
        name: "ESME_RMSGQFUL",
        code: ResultCode::ProviderError,
        retry: true,
        slow_down: true,
    },
    StatusMapping {
        status: status::ESME_RSYSERR,
        name: "ESME_RSYSERR",
        code: ResultCode::ProviderError,
        retry: true,
        slow_down: false,
    },
    StatusMapping {
        status: status::ESME_RINVDSTADR,
        name: "ESME_RINVDSTADR",
        code: ResultCode::InvalidRecipient,
        retry: false,
        slow_down: false,
    },
    StatusMapping {
        status: status::ESME_RSUBMITFAIL,
        name: "ESME_RSUBMITFAIL",
        code: ResultCode::RejectedByCarrier,
        retry: false,
        slow_down: false,
    },
];

/// The row for every status not in [`SUBMIT_STATUSES`].
pub const OTHER_STATUS: StatusMapping = StatusMapping {
    status: u32::MAX,
    name: "other",
    code: ResultCode::RejectedByCarrier,
    retry: false,
    slow_down: false,
};

/// The mapping of a non-zero submit_sm_resp status.
pub fn submit_status(status: u32) -> StatusMapping {
    SUBMIT_STATUSES
        .iter()
        .copied()
        .find(|m| m.status == status)
        .unwrap_or(OTHER_STATUS)
}

/// A parsed delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The carrier message id (as given in submit_sm_resp).
    pub carrier_id: String,
    /// The state text (`DELIVRD`…), upper-cased; from `message_state` when
    /// the text has none.
    pub stat: String,
    /// The carrier's `err:` field, if any.
    pub err: Option<String>,
    /// Unified code of a final state; `None` when not final or unknown.
    pub code: Option<ResultCode>,
}

impl Receipt {
    /// `stat:… err:…`, for operators.
    pub fn detail(&self) -> String {
        match &self.err {
            Some(err) => format!("stat:{} err:{err}", self.stat),
            None => format!("stat:{}", self.stat),
        }
    }
}

/// The fields of a receipt text (any may be missing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptText {
    /// `id:`.
    pub id: Option<String>,
    /// `stat:`, upper-cased.
    pub stat: Option<String>,
    /// `err:`.
    pub err: Option<String>,
}

/// The value after `key` (e.g. `"stat:"`), matched case-insensitively at
/// the start of the text or after whitespace, up to the next whitespace.
fn field(text: &str, lower: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(pos) = lower[from..].find(key).map(|p| p + from) {
        let at_word_start = pos == 0 || lower[..pos].ends_with(char::is_whitespace);
        if at_word_start {
            let rest = &text[pos + key.len()..];
            let value: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return (!value.is_empty()).then_some(value);
        }
        from = pos + key.len();
    }
    None
}

/// Parses the conventional receipt text.
pub fn parse_receipt_text(text: &str) -> ReceiptText {
    // ASCII lower-casing keeps byte offsets, so positions found in `lower`
    // index `text` too.
    let lower = text.to_ascii_lowercase();
    ReceiptText {
        id: field(text, &lower, "id:"),
        stat: field(text, &lower, "stat:").map(|s| s.to_ascii_uppercase()),
        err: field(text, &lower, "err:"),
    }
}

/// The unified code of a receipt state text (`None`: not final or unknown).
pub fn stat_code(stat: &str) -> Option<ResultCode> {
    RECEIPT_STATS
        .iter()
        .find(|m| m.stat.eq_ignore_ascii_case(stat))
        .and_then(|m| m.code)
}

/// The receipt carried by a `deliver_sm`; `None` when it is not a receipt
/// (an MO message) or names no message id.
pub fn parse_receipt(deliver: &Deliver) -> Option<Receipt> {
    if deliver.esm_class & ESM_RECEIPT == 0 {
        return None;
    }
    let body = deliver
        .message_payload
        .as_deref()
        .unwrap_or(&deliver.short_message);
    let text = parse_receipt_text(&String::from_utf8_lossy(body));
    let carrier_id = deliver.receipted_message_id.clone().or(text.id)?;
    let from_state = deliver.message_state.and_then(|state| {
        RECEIPT_STATS
            .iter()
            .find(|m| m.message_state == state)
            .map(|m| m.stat.to_owned())
    });
    let stat = from_state.or(text.stat).unwrap_or_default();
    let refined = text.err.as_deref().and_then(err_code);
    let code = match stat_code(&stat) {
        Some(code) if code != ResultCode::Delivered => refined.or(Some(code)),
        other => other,
    };
    Some(Receipt {
        code,
        carrier_id,
        stat,
        err: text.err,
    })
}
