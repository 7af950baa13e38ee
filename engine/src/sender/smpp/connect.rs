//! Opening an SMPP connection: resolve, TCP, and TLS when the sender says
//! `tls = true` (SPEC §5.6); a TLS file that does not load keeps the
//! session down (and retried) with the reason. Shard-local.

use std::time::Duration;

use super::link::Broken;
use crate::rt;
pub(super) use crate::sender::tls::TlsSlot;

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
    let Some(config) = tls.get().await.map_err(Broken::io)? else {
        return Ok(conn);
    };
    match rt::timeout(timeout, conn.start_tls(&config, host)).await {
        Some(Ok(conn)) => Ok(conn),
        Some(Err(e)) => Err(Broken::io(format!("TLS with {addr}: {e}"))),
        None => Err(Broken::io(format!("TLS with {addr}: no handshake in time"))),
    }
}
