//! Opening an SMPP connection: resolve, TCP, and TLS when the sender says
//! `tls = true` (SPEC §5.6). The TLS configuration reads PEM files, so it
//! is built once per session on the blocking pool and kept; a file that
//! does not load keeps the session down (and retried) with the reason.
//! Shard-local.

use std::cell::RefCell;
use std::time::Duration;

use super::link::Broken;
use crate::rt::{self, ClientTls, ClientTlsSpec};

/// A session's TLS: what it trusts and presents, built on first use.
pub(super) struct TlsSlot {
    spec: Option<ClientTlsSpec>,
    built: RefCell<Option<ClientTls>>,
}

impl TlsSlot {
    /// `None`: plain TCP.
    pub(super) fn new(spec: Option<ClientTlsSpec>) -> TlsSlot {
        TlsSlot {
            spec,
            built: RefCell::new(None),
        }
    }

    async fn config(&self) -> Result<Option<ClientTls>, Broken> {
        let Some(spec) = self.spec.clone() else {
            return Ok(None);
        };
        if let Some(tls) = self.built.borrow().clone() {
            return Ok(Some(tls));
        }
        let tls = rt::blocking(move || ClientTls::build(&spec))
            .await
            .map_err(|e| Broken::io(format!("TLS configuration: {e}")))?
            .for_shard();
        *self.built.borrow_mut() = Some(tls.clone());
        Ok(Some(tls))
    }
}

/// Resolves `host:port`, connects and, with TLS, runs the handshake (the
/// certificate must name `host`), each step within `timeout`.
pub(super) async fn connect(
    host: &str,
    port: u16,
    tls: &TlsSlot,
    timeout: Duration,
) -> Result<rt::TcpConn, Broken> {
    let addr = rt::resolve(host, port)
        .await
        .map_err(|e| Broken::io(format!("resolving {host}:{port}: {e}")))?;
    let conn = rt::connect(addr, timeout)
        .await
        .map_err(|e| Broken::io(format!("connecting to {addr}: {e}")))?;
    let Some(config) = tls.config().await? else {
        return Ok(conn);
    };
    match rt::timeout(timeout, conn.start_tls(&config, host)).await {
        Some(Ok(conn)) => Ok(conn),
        Some(Err(e)) => Err(Broken::io(format!("TLS with {addr}: {e}"))),
        None => Err(Broken::io(format!("TLS with {addr}: no handshake in time"))),
    }
}
