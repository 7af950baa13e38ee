//! A stored message with every optional field set, or none, for the
//! tests of the store and of what reads it.

use std::rc::Rc;

use super::{Links, PackedRequest, StoredMessage};
use crate::core::lifecycle::report::ReportState;
use crate::model::{Class, Event, MessageId, MessageRequest, Status};

/// Its accept time (unix ms).
pub const T0: i64 = 1_700_000_000_000;

/// A message with every optional field set (`full`) or none.
pub fn message(seq: u64, full: bool) -> StoredMessage {
    let mut request = MessageRequest::test_sms(&format!("src-{seq}"));
    let name = |s: &str| -> Rc<str> { Rc::from(s) };
    if full {
        request.send_at = Some(T0 + 60_000);
        request.validity = Some(600);
        request.priority = Some(Class::Otp);
        request.origin_code = Some("BIZ-7".into());
        request.text = "안녕하세요 ".repeat(40);
    }
    let event = |after: i64, status: Status, code: u16, late: bool| Event {
        at_ms: T0 + after,
        status,
        code,
        late_receipt: late,
    };
    StoredMessage {
        id: MessageId::on_node(3, 1, seq),
        group_code: name("G1"),
        client_id: name(if full { "client-b" } else { "client-a" }),
        request: PackedRequest::pack(&request),
        status: if full { Status::Failed } else { Status::Queued },
        price: if full { -12 } else { 0 },
        code: if full { 5007 } else { 1000 },
        carrier: full.then(|| name("SKT")),
        sender: full.then(|| name("SMPP01")),
        carrier_msg_id: full.then(|| "c-9f".into()),
        created_at_ms: T0,
        updated_at_ms: T0 + if full { 86_400_000 } else { 0 },
        links: Links::new(
            full.then(|| MessageId::new(1, 77)),
            full.then(|| MessageId::new(0, 5)),
        ),
        events: match full {
            false => Box::new([event(0, Status::Accepted, 1000, false)]),
            true => Box::new([
                event(0, Status::Accepted, 1000, false),
                event(5, Status::Submitted, 1000, false),
                event(86_400_000, Status::Failed, 5007, false),
                event(90_000_000, Status::Delivered, 1000, true),
            ]),
        },
        report: ReportState {
            failures: u8::from(full) * 3,
            next_due_ms: if full { T0 + 9_000 } else { 0 },
            done: false,
            abandoned: full,
        },
        backlog: full,
        handed: 0,
    }
}
