//! The MCMP under test: a `mcmp serve` child on a temp data dir, or a
//! running deployment; and the admin calls that register the e2e tenant.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::load::client::Conn;

/// How long `mcmp serve` may take to log its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The ready line's marker (SPEC §2.1: one line with the real address).
const READY_MARK: &str = "listening on http://";

/// A `mcmp serve` child, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data dir (`<dir>/data`), config and log, removed on drop (after
    /// the child is killed).
    dir: tempfile::TempDir,
}

impl Server {
    /// The child's process id (for `/proc/<pid>/…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its log file (everything it wrote on stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mcmp.log")
    }

    /// Whether the child has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds the `mcmp` binary: `--mcmp-bin`, else `mcmp` on PATH, else
/// `./target/release/mcmp`.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "--mcmp-bin {} does not exist", p.display());
        return Ok(p.to_owned());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("mcmp"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("./target/release/mcmp")])
        .find(|p| p.is_file())
        .context("no mcmp binary: give --mcmp-bin, put mcmp on PATH or build ./target/release/mcmp")
}

/// Starts `bin serve --listen 127.0.0.1:0` on a fresh data dir with
/// `admin_token`, and waits for its ready line on stderr. The rest of its
/// log goes to `<dir>/mcmp.log`. With `config` (TOML text), it is written
/// to `<dir>/mcmp.toml` and given as `--config`; the flags still set the
/// listen address and the data dir.
pub async fn start(bin: &Path, admin_token: &str, config: Option<&str>) -> anyhow::Result<Server> {
    let dir = tempfile::Builder::new().prefix("mcmp-e2e-").tempdir()?;
    let log_path = dir.path().join("mcmp.log");
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"));
    if let Some(toml) = config {
        let path = dir.path().join("mcmp.toml");
        std::fs::write(&path, toml).with_context(|| format!("write {}", path.display()))?;
        command.arg("--config").arg(path);
    }
    let mut child = command
        .env("MCMP_ADMIN_TOKEN", admin_token)
        // Its sink is plain HTTP on loopback: allow such a report_uri.
        .env("MCMP_REPORTS_ALLOW_HTTP", "true")
        .env("MCMP_REPORTS_ALLOW_PRIVATE", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let stderr = child.stderr.take().context("piped stderr")?;
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let (tx, rx) = mpsc::channel();
    // A thread, not a task: the pipe is a blocking std handle and must be
    // drained for the whole run or the server blocks on its own log.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(addr) = ready_addr(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let found = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT)).await?;
    let Ok(addr) = found else {
        let _ = child.kill();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        anyhow::bail!(
            "mcmp serve did not log `{READY_MARK}…` within {START_TIMEOUT:?}; its log:\n{log}"
        );
    };
    eprintln!(
        "e2e: mcmp serve listening on {addr} (log {})",
        log_path.display()
    );
    Ok(Server { child, addr, dir })
}

/// The address in a ready line `… listening on http://ADDR …`.
pub fn ready_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(READY_MARK)? + READY_MARK.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches('/').parse().ok()
}

/// One admin API call; any non-2xx answer is an error naming the call.
pub async fn admin(
    conn: &mut Conn,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let auth = format!("Bearer {token}");
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let full = format!("/admin/v1{path}");
    let (status, answer) = conn
        .send(
            method.clone(),
            &full,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
        .with_context(|| format!("{method} {full}"))?;
    anyhow::ensure!(
        status.is_success(),
        "{method} {full} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// What the tenant registration needs.
#[derive(Debug)]
pub struct Tenant<'a> {
    /// Customer group code.
    pub group_code: &'a str,
    /// Bill code of the load.
    pub bill_code: &'a str,
    /// Caller ID of the load.
    pub from: &'a str,
    /// Where reports go.
    pub report_uri: String,
    /// The SMSC simulator's SMPP address.
    pub smsc: SocketAddr,
    /// Senders to register.
    pub senders: usize,
    /// Channels routed to the SMSC.
    pub channels: Vec<String>,
    /// The bill code's class and the senders' TPS cap.
    pub shape: Shape,
}

/// How the tenant's traffic is shaped; the default is what `e2e` and
/// `soak` register (the server's default class, senders without a cap).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// The bill code's `class` (`otp`, `realtime`, `bulk`, `ad`); none
    /// leaves the server's default (`realtime`).
    pub bill_class: Option<String>,
    /// Each sender's `tps` (0 = no limit).
    pub sender_tps: u32,
}

/// Registers customer, services, bill code, caller ID, senders and routes,
/// then a client; returns (client_id, client_secret).
pub async fn register(
    conn: &mut Conn,
    token: &str,
    t: &Tenant<'_>,
) -> anyhow::Result<(String, String)> {
    let g = t.group_code;
    admin(
        conn,
        token,
        Method::PUT,
        &format!("/customers/{g}"),
        Some(json!({"name": "mcmp-loadtest e2e"})),
    )
    .await?;
    let channels: serde_json::Map<String, Value> = t
        .channels
        .iter()
        .map(|c| (c.clone(), json!({"enabled": true, "tps": 0})))
        .collect();
    admin(
        conn,
        token,
        Method::PUT,
        &format!("/customers/{g}/services"),
        Some(json!({"channels": channels})),
    )
    .await?;
    let mut bill_code = json!({"ad": false});
    if let Some(class) = &t.shape.bill_class {
        bill_code["class"] = class.as_str().into();
    }
    admin(
        conn,
        token,
        Method::PUT,
        &format!("/customers/{g}/bill-codes/{}", t.bill_code),
        Some(bill_code),
    )
    .await?;
    admin(
        conn,
        token,
        Method::PUT,
        &format!("/customers/{g}/caller-ids/{}", t.from),
        None,
    )
    .await?;
    let sender_group = format!("{g}_SMSC");
    for n in 1..=t.senders {
        let sender = json!({
            "group": sender_group,
            "channels": t.channels,
            "carriers": ["*"],
            "transport": {
                "type": "smpp",
                "host": t.smsc.ip().to_string(),
                "port": t.smsc.port(),
                "system_id": format!("{g}{n:02}"),
                "password": "e2e",
                "binds": 1,
                "window": 64,
                "tps": t.shape.sender_tps,
            },
        });
        admin(
            conn,
            token,
            Method::PUT,
            &format!("/senders/{g}_S_SIM{n:02}"),
            Some(sender),
        )
        .await?;
    }
    for channel in &t.channels {
        let route = json!({"carriers": {"*": [{"sender_group": sender_group, "ratio": 1}]}});
        admin(
            conn,
            token,
            Method::PUT,
            &format!("/routes/{g}/{channel}"),
            Some(route),
        )
        .await?;
    }
    let client = admin(
        conn,
        token,
        Method::POST,
        &format!("/customers/{g}/clients"),
        Some(json!({"report_uri": t.report_uri})),
    )
    .await?;
    let id = client["client_id"].as_str().context("no client_id")?;
    let secret = client["client_secret"]
        .as_str()
        .context("no client_secret")?;
    Ok((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_are_found() {
        let line = "2025-01-01T00:00:00Z INFO mcmp ready: listening on http://127.0.0.1:40123 (2 shards, data dir /tmp/x)";
        assert_eq!(
            ready_addr(line),
            Some("127.0.0.1:40123".parse().expect("addr"))
        );
        assert_eq!(ready_addr("starting"), None);
    }
}
