//! Fuzzes the SMPP transport's inbound path: the `command_length` framer and
//! the PDU decoder ([`mcmp_engine::sender::smpp::codec`]).
//!
//! The first input byte picks where the rest is split in two chunks (as two
//! socket reads would deliver it); each chunk is pushed into a [`Framer`],
//! every complete frame is handed to [`decode_frame`]. A framing error ends
//! the input, as it ends the session. Nothing may panic, and every frame must
//! be within the header-to-[`MAX_PDU_LEN`] bounds the framer promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcmp_engine::sender::smpp::codec::{decode_frame, Framer, HEADER_LEN, MAX_PDU_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = rest.len() * usize::from(split) / usize::from(u8::MAX);
    let (first, second) = rest.split_at(at);
    let mut framer = Framer::new();
    for chunk in [first, second] {
        framer.push(chunk);
        if !drain(&mut framer) {
            return;
        }
    }
});

/// Decodes every complete frame; false once the framer reports an error.
fn drain(framer: &mut Framer) -> bool {
    loop {
        match framer.next_frame() {
            Ok(Some(frame)) => {
                assert!(
                    (HEADER_LEN..=MAX_PDU_LEN).contains(&frame.len()),
                    "framer yielded a {}-byte frame",
                    frame.len()
                );
                // Malformed bodies are errors, which is fine; panics are not.
                let _ = decode_frame(frame);
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}
