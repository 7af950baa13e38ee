//! Fuzzes the engine's WAL record codec ([`mcmp_engine::codec::Record`]):
//! the first input byte is the record kind, the rest its bincode payload.
//!
//! Decoding arbitrary bytes may fail but must not panic (nor allocate without
//! bound). A record that decodes must survive a round trip: re-encoded, it
//! has the same kind (a record of an old layout, today's kind for it) and
//! decodes to an equal record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcmp_engine::codec::{
    Record, KIND_ACCEPTED, KIND_ACCEPTED_V1, KIND_ACCEPTED_V2, KIND_ACCEPTED_V3,
};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let Ok(record) = Record::decode(kind, payload) else {
        return;
    };
    let (again_kind, bytes) = record.encode();
    let current = match kind {
        KIND_ACCEPTED_V1 | KIND_ACCEPTED_V2 | KIND_ACCEPTED_V3 => KIND_ACCEPTED,
        other => other,
    };
    assert!(
        again_kind == current,
        "kind {kind} re-encoded as kind {again_kind}"
    );
    match Record::decode(again_kind, &bytes) {
        Ok(again) => assert!(
            again == record,
            "round trip changed the record: {record:?} became {again:?}"
        ),
        Err(e) => panic!("a re-encoded record does not decode: {e}"),
    }
});
