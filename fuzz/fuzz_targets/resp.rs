//! Fuzzes the RESP2 decoder of the Redis Cluster client
//! ([`mcmp_engine::redis::resp::decode`]): any bytes a Redis node (or
//! something pretending to be one) sends may be refused or wait for more;
//! none may panic. A decoded reply never claims more bytes than it was
//! given, and decoding a prefix of a whole reply waits or fails, never
//! gives another reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcmp_engine::redis::resp::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((reply, used))) = decode(data) {
        assert!(used <= data.len() && used > 0);
        if let Ok(Some((again, n))) = decode(&data[..used]) {
            assert_eq!((again, n), (reply, used));
        }
        for cut in [used / 2, used.saturating_sub(1)] {
            if cut < used {
                assert!(!matches!(decode(&data[..cut]), Ok(Some((_, n))) if n > cut));
            }
        }
    }
});
