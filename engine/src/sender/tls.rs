//! A session's TLS configuration, built on first use: it reads PEM files,
//! so it is built on the blocking pool, once per session, and kept. Used by
//! the SMPP and SMTP transports. Shard-local.

use std::cell::RefCell;

use crate::rt::{self, ClientTls, ClientTlsSpec};

/// What a session's TLS trusts and presents (`None`: no TLS).
pub(crate) struct TlsSlot {
    spec: Option<ClientTlsSpec>,
    built: RefCell<Option<ClientTls>>,
}

impl TlsSlot {
    /// `None`: the session speaks plain TCP.
    pub(crate) fn new(spec: Option<ClientTlsSpec>) -> TlsSlot {
        TlsSlot {
            spec,
            built: RefCell::new(None),
        }
    }

    /// The configuration, built on first use; `Ok(None)` without TLS. A
    /// file that does not load is an error (the session stays down and
    /// tries again later).
    pub(crate) async fn get(&self) -> Result<Option<ClientTls>, String> {
        let Some(spec) = self.spec.clone() else {
            return Ok(None);
        };
        if let Some(tls) = self.built.borrow().clone() {
            return Ok(Some(tls));
        }
        let tls = rt::blocking(move || ClientTls::build(&spec))
            .await
            .map_err(|e| format!("TLS configuration: {e}"))?
            .for_shard();
        *self.built.borrow_mut() = Some(tls.clone());
        Ok(Some(tls))
    }
}
