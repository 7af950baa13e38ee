//! TLS for the `smtp` transport (SPEC §5.6): STARTTLS (RFC 3207) after the
//! first `EHLO`, as the sender's `starttls` says, or TLS from the first
//! byte (`implicit_tls`, port 465). The relay's certificate must name the
//! sender's `host`. A failed handshake breaks the connection: the session
//! never falls back to clear text after asking for TLS.

use super::{Link, Reply, REPLY_TIMEOUT};
use crate::rt::{self, ClientTls};
use crate::sender::config::StartTls;

/// Why a `required` sender sends nothing to this relay.
pub const NOT_OFFERED: &str = "the relay does not offer STARTTLS (starttls = required)";

/// Whether an `EHLO` reply lists the STARTTLS extension.
fn offers_starttls(ehlo: &Reply) -> bool {
    ehlo.text
        .split_whitespace()
        .any(|w| w.eq_ignore_ascii_case("STARTTLS"))
}

/// Runs the TLS handshake on the link's connection, within the reply
/// timeout. Bytes the relay sent before it (a STARTTLS injection) fail it.
pub(super) async fn handshake(link: Link, tls: &ClientTls, host: &str) -> Result<Link, String> {
    if !link.buf.is_empty() {
        return Err("the relay sent data before the TLS handshake".into());
    }
    match rt::timeout(REPLY_TIMEOUT, link.conn.start_tls(tls, host)).await {
        Some(Ok(conn)) => Ok(Link {
            conn,
            buf: Vec::new(),
        }),
        Some(Err(e)) => Err(format!("TLS handshake with {host}: {e}")),
        None => Err(format!("TLS handshake with {host} timed out")),
    }
}

/// After the first `EHLO` on a clear connection: upgrades it when `mode`
/// and the relay's extensions say so, then says `EHLO` again (RFC 3207
/// §4.2: what was learnt before TLS is forgotten). Returns the link and
/// the `EHLO` reply that now holds.
pub(super) async fn negotiate(
    mut link: Link,
    ehlo: Reply,
    mode: StartTls,
    tls: Option<&ClientTls>,
    host: &str,
) -> Result<(Link, Reply), String> {
    let offered = offers_starttls(&ehlo);
    let tls = match (mode, tls) {
        (StartTls::Off, _) | (_, None) => return Ok((link, ehlo)),
        (StartTls::Opportunistic, _) if !offered => return Ok((link, ehlo)),
        (StartTls::Required, _) if !offered => return Err(NOT_OFFERED.into()),
        (_, Some(tls)) => tls,
    };
    let reply = link.command("STARTTLS").await?;
    if reply.code != 220 {
        return Err(format!("STARTTLS refused: {} {}", reply.code, reply.text));
    }
    let mut link = handshake(link, tls, host).await?;
    let ehlo = link.command("EHLO mcmp").await?;
    Ok((link, ehlo))
}
