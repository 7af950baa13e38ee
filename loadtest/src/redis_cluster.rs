//! `mcmp-loadtest redis-cluster`: a real Redis Cluster on loopback for
//! trying and testing `[cluster]` (SPEC §5.8): `--masters` (default 3)
//! `redis-server` processes of the machine's own Redis (Debian's
//! `redis-server` package) and `--replicas` (default 0) per master,
//! joined with `redis-cli --cluster create`, no persistence, in a
//! temporary directory. Ready line per server: `ready redis <addr>`. The
//! servers stop with this process, also when it is killed
//! (`PR_SET_PDEATHSIG`).
//!
//! It is not a simulator: the servers are the real thing; this only
//! starts them the way an operator would.

#![allow(unsafe_code)] // one prctl(2) between fork and exec, below

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;

use crate::shutdown::Shutdown;

/// `redis-cluster` arguments.
#[derive(Debug, Args)]
pub struct RedisClusterArgs {
    /// Number of masters (3 or more: Redis Cluster's minimum).
    #[arg(long, default_value_t = 3)]
    pub masters: usize,
    /// Replicas per master (a failover needs at least 1).
    #[arg(long, default_value_t = 0)]
    pub replicas: usize,
    /// Where the servers keep their files (default: a temporary directory
    /// removed at exit).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// The servers, killed on drop.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the cluster, prints its ready lines and runs until shutdown.
pub async fn run(args: RedisClusterArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    if args.masters < 3 {
        bail!("--masters must be at least 3 (Redis Cluster's minimum)");
    }
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("mcmp-loadtest-redis-")
                .tempdir()?,
        ),
    };
    let dir = args
        .dir
        .as_deref()
        .or(temp.as_ref().map(tempfile::TempDir::path))
        .context("a directory")?;
    std::fs::create_dir_all(dir)?;
    let mut attempt = 0;
    let (servers, ports) = loop {
        attempt += 1;
        match start(dir, args.masters, args.replicas).await {
            Ok(up) => break up,
            // A port picked free may be taken before its server binds it
            // (other clusters starting at the same time): new ports.
            Err(e) if attempt < 5 => eprintln!("redis-cluster: {e:#}; trying other ports"),
            Err(e) => return Err(e),
        }
    };
    for p in &ports {
        crate::ready("redis", SocketAddr::from(([127, 0, 0, 1], *p)));
    }
    shutdown.wait().await;
    drop(servers);
    Ok(())
}

/// Starts `n` servers on free ports and joins them. The servers are
/// spawned from this (runtime worker) thread, which lives as long as the
/// process: `PR_SET_PDEATHSIG` fires when the spawning thread ends.
async fn start(dir: &Path, masters: usize, replicas: usize) -> anyhow::Result<(Servers, Vec<u16>)> {
    let ports = free_ports(masters * (1 + replicas))?;
    let mut servers = Servers(Vec::new());
    for p in &ports {
        servers.0.push(start_server(dir, *p)?);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (c, p) in servers.0.iter_mut().zip(&ports) {
        if let Some(status) = c.try_wait()? {
            bail!("redis-server on port {p} exited at start ({status})");
        }
    }
    let joined = ports.clone();
    tokio::task::spawn_blocking(move || create(&joined, replicas)).await??;
    Ok((servers, ports))
}

/// `n` ports whose cluster bus ports (+10000) are free too.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let mut ports = Vec::new();
    for _ in 0..1000 {
        if ports.len() == n {
            return Ok(ports);
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let bus_free = TcpListener::bind(("127.0.0.1", port.wrapping_add(10_000))).is_ok();
        if port < 50_000 && bus_free && !ports.contains(&port) {
            ports.push(port);
        }
    }
    bail!("no free port pairs for the cluster")
}

fn start_server(dir: &Path, port: u16) -> anyhow::Result<Child> {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory of the parent; it only asks the kernel to kill the child when
    // this process dies, so a killed load tester leaves no server behind.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .context("starting redis-server (apt install redis-server)")
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Waits for every server, joins them into a cluster, waits until it is ok.
fn create(ports: &[u16], replicas: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let wait = |what: &str, ok: &dyn Fn(u16) -> bool| -> anyhow::Result<()> {
        for p in ports {
            while !ok(*p) {
                if Instant::now() > deadline {
                    bail!("redis on port {p}: {what} not reached in 20 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    };
    wait("PONG", &|p| cli(p, &["PING"]) == "PONG")?;
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .output()
        .context("redis-cli --cluster create (apt install redis-server)")?;
    if !created.status.success() {
        bail!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
    }
    wait("cluster_state:ok", &|p| {
        cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    })?;
    // A replica still loading its master's first copy acknowledges offset
    // 0: a failover then would lose every write. Ready means in sync.
    wait("replica in sync", &|p| {
        in_sync(&cli(p, &["INFO", "replication"]))
    })
}

/// Whether `INFO replication` is a master's, or a replica's whose link is
/// up (its first full copy loaded).
fn in_sync(info: &str) -> bool {
    info.contains("role:master") || info.contains("master_link_status:up")
}

#[cfg(test)]
mod tests {
    use super::in_sync;

    #[test]
    fn a_replica_is_in_sync_once_its_link_is_up() {
        assert!(in_sync(
            "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"
        ));
        let loading = "role:slave\r\nmaster_link_status:down\r\nmaster_sync_in_progress:1\r\n";
        assert!(!in_sync(loading));
        assert!(in_sync("role:slave\r\nmaster_link_status:up\r\n"));
    }
}
