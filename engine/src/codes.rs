//! The unified result codes of SPEC §3: one table, stable numbers.
//!
//! Every accept decision, carrier outcome and report carries one of these.
//! `docs/RESULT_CODES.md` is generated from [`ResultCode::ALL`] (see the test
//! at the bottom) so the documented table cannot drift from the code.

use serde::{Serialize, Serializer};

/// A unified result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ResultCode {
    /// The message was accepted.
    Accepted = 1000,
    /// The carrier confirmed delivery.
    Delivered = 2000,
    /// The recipient is not a valid number/address.
    InvalidRecipient = 3001,
    /// The body is over the channel's limit.
    BodyTooLong = 3002,
    /// The caller ID is not registered for the customer.
    CallerIdNotRegistered = 3003,
    /// The bill code is not registered for the customer.
    UnknownBillCode = 3004,
    /// The channel is not enabled for the customer.
    ChannelNotEnabled = 3005,
    /// The `src_msg_id` was already used within the dedup window.
    DuplicateSrcMsgId = 3006,
    /// The customer's TPS for the channel is exhausted.
    TpsExceeded = 3007,
    /// The prepaid balance cannot pay for the message.
    BalanceExhausted = 3008,
    /// The text contains an operator spam keyword.
    SpamKeyword = 3009,
    /// An ad without `(광고)` or the free opt-out line.
    AdMarkingMissing = 3010,
    /// An immediate ad between 21:00 and 08:00 Asia/Seoul.
    AdAtNight = 3011,
    /// An ad to a number that opted out.
    RecipientOptedOut = 3012,
    /// A field is missing, malformed or out of range.
    InvalidField = 3013,
    /// The customer's backlog for the channel is full (SPEC §5.3).
    BacklogFull = 3014,
    /// A message names a media file that is unknown (or another
    /// customer's), not yet registered, failed or expired (SPEC §5.10).
    FileNotUsable = 3015,
    /// A reseller's message without an origin code, or with one not
    /// registered for the customer (SPEC §5.11).
    OriginCodeInvalid = 3016,
    /// No route exists for the customer and channel.
    NoRoute = 4001,
    /// No sender was available within the hold timeout.
    NoAvailableSender = 4002,
    /// The carrier could not deliver.
    Undeliverable = 5001,
    /// The message expired at the carrier.
    ExpiredAtCarrier = 5002,
    /// The carrier rejected the message.
    RejectedByCarrier = 5003,
    /// The number was ported to another carrier.
    PortedOut = 5004,
    /// The subscriber is unknown.
    UnknownSubscriber = 5005,
    /// The provider failed.
    ProviderError = 5006,
    /// No final result within the message's validity (SPEC §5.1).
    Expired = 5007,
    /// Canceled by the customer.
    Canceled = 6001,
}

impl ResultCode {
    /// Every code, in numeric order.
    pub const ALL: [ResultCode; 28] = [
        ResultCode::Accepted,
        ResultCode::Delivered,
        ResultCode::InvalidRecipient,
        ResultCode::BodyTooLong,
        ResultCode::CallerIdNotRegistered,
        ResultCode::UnknownBillCode,
        ResultCode::ChannelNotEnabled,
        ResultCode::DuplicateSrcMsgId,
        ResultCode::TpsExceeded,
        ResultCode::BalanceExhausted,
        ResultCode::SpamKeyword,
        ResultCode::AdMarkingMissing,
        ResultCode::AdAtNight,
        ResultCode::RecipientOptedOut,
        ResultCode::InvalidField,
        ResultCode::BacklogFull,
        ResultCode::FileNotUsable,
        ResultCode::OriginCodeInvalid,
        ResultCode::NoRoute,
        ResultCode::NoAvailableSender,
        ResultCode::Undeliverable,
        ResultCode::ExpiredAtCarrier,
        ResultCode::RejectedByCarrier,
        ResultCode::PortedOut,
        ResultCode::UnknownSubscriber,
        ResultCode::ProviderError,
        ResultCode::Expired,
        ResultCode::Canceled,
    ];

    /// The number.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// A rejection at accept by a policy check, recorded for the operators'
    /// list of blocked messages (SPEC §5.4).
    pub fn is_policy_block(self) -> bool {
        matches!(
            self,
            ResultCode::CallerIdNotRegistered
                | ResultCode::OriginCodeInvalid
                | ResultCode::SpamKeyword
                | ResultCode::AdMarkingMissing
                | ResultCode::AdAtNight
                | ResultCode::RecipientOptedOut
        )
    }

    /// The code for a number, if it is one of ours.
    pub fn from_u16(n: u16) -> Option<ResultCode> {
        ResultCode::ALL.into_iter().find(|c| c.as_u16() == n)
    }

    /// A short human description (the `reason` of a rejection).
    pub fn description(self) -> &'static str {
        match self {
            ResultCode::Accepted => "accepted",
            ResultCode::Delivered => "delivered",
            ResultCode::InvalidRecipient => "invalid recipient",
            ResultCode::BodyTooLong => "body too long",
            ResultCode::CallerIdNotRegistered => "caller ID not registered",
            ResultCode::UnknownBillCode => "unknown bill code",
            ResultCode::ChannelNotEnabled => "channel not enabled",
            ResultCode::DuplicateSrcMsgId => "duplicate src_msg_id",
            ResultCode::TpsExceeded => "TPS exceeded",
            ResultCode::BalanceExhausted => "prepaid balance exhausted",
            ResultCode::SpamKeyword => "spam keyword",
            ResultCode::AdMarkingMissing => "ad marking missing",
            ResultCode::AdAtNight => "ad at night",
            ResultCode::RecipientOptedOut => "recipient opted out",
            ResultCode::InvalidField => "invalid field / schema",
            ResultCode::BacklogFull => "backlog full",
            ResultCode::FileNotUsable => "file not usable",
            ResultCode::OriginCodeInvalid => "origin code missing or not registered",
            ResultCode::NoRoute => "no route",
            ResultCode::NoAvailableSender => "no available sender (held too long)",
            ResultCode::Undeliverable => "undeliverable",
            ResultCode::ExpiredAtCarrier => "expired at carrier",
            ResultCode::RejectedByCarrier => "rejected by carrier",
            ResultCode::PortedOut => "ported out",
            ResultCode::UnknownSubscriber => "unknown subscriber",
            ResultCode::ProviderError => "provider error",
            ResultCode::Expired => "expired: no final result within the validity period",
            ResultCode::Canceled => "canceled",
        }
    }

    /// The documented table, as Markdown.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | meaning |\n| --- | --- |\n");
        for c in ResultCode::ALL {
            out.push_str(&format!("| {} | {} |\n", c.as_u16(), c.description()));
        }
        out
    }
}

impl Serialize for ResultCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_sorted() {
        let mut last = 0;
        for c in ResultCode::ALL {
            assert!(c.as_u16() > last, "{c:?} out of order");
            last = c.as_u16();
            assert_eq!(ResultCode::from_u16(c.as_u16()), Some(c));
        }
        assert_eq!(ResultCode::from_u16(1234), None);
    }

    #[test]
    fn documented_table_matches_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/RESULT_CODES.md");
        let doc = std::fs::read_to_string(path).expect("docs/RESULT_CODES.md exists");
        assert!(
            doc.contains(&ResultCode::markdown_table()),
            "docs/RESULT_CODES.md is out of date; paste ResultCode::markdown_table() into it"
        );
    }
}
