//! The Redis Cluster client against a real Redis Cluster: three masters of
//! Debian's `redis-server` on loopback, started by `mcmp-loadtest
//! redis-cluster` (`redis-cli --cluster create`). Without `redis-server`
//! the test says SKIPPED loudly; under `CI=true` it fails instead.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mcmp_engine::redis::slot::slot;
use mcmp_engine::redis::{Cluster, RedisError, Reply};
use mcmp_engine::rt;

/// Three masters started by `mcmp-loadtest redis-cluster` (which stops
/// them when it is killed), in a directory removed on drop.
struct RedisCluster {
    ports: Vec<u16>,
    loadtest: Child,
    _dir: tempfile::TempDir,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = self.loadtest.kill();
        let _ = self.loadtest.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts the cluster, or `None` (loudly) when `redis-server` is missing.
fn start_cluster() -> Option<RedisCluster> {
    if !have("redis-server") || !have("redis-cli") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server and redis-cli are required under CI=true (apt install redis-server)"
        );
        eprintln!("SKIPPED: redis-server or redis-cli not installed (apt install redis-server)");
        return None;
    }
    // Built beside this test by `cargo test --workspace`.
    let exe = std::env::current_exe().expect("test exe");
    let bin = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = bin.join("mcmp-loadtest");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p mcmp-loadtest",
        bin.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut loadtest = Command::new(bin)
        .args(["redis-cluster", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mcmp-loadtest redis-cluster");
    let stdout = loadtest.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout).lines().map_while(Result::ok);
    let ports = ready
        .filter_map(|l| l.strip_prefix("ready redis ").map(str::to_string))
        .map(|a| a.parse::<SocketAddr>().expect("addr").port())
        .take(3)
        .collect();
    Some(RedisCluster {
        ports,
        loadtest,
        _dir: dir,
    })
}

fn node_id(port: u16) -> String {
    cli(port, &["CLUSTER", "MYID"])
}

/// A key of `slot`.
fn key_in(wanted: u16) -> String {
    (0..)
        .map(|n| format!("k{n}"))
        .find(|k| slot(k.as_bytes()) == wanted)
        .expect("a key")
}

fn on_shard<F, Fut>(f: F)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    rt::run_shards(1, move |_| f()).expect("the shard ran");
}

fn bulk(reply: Reply) -> Option<String> {
    match reply {
        Reply::Bulk(Some(b)) => Some(String::from_utf8(b).expect("utf-8")),
        _ => None,
    }
}

#[test]
fn a_redis_cluster_is_used_through_redirections_and_failures() {
    let Some(redis) = start_cluster() else {
        return;
    };
    let seeds: Vec<String> = vec![format!("127.0.0.1:{}", redis.ports[0])];
    let ports = redis.ports.clone();
    let run_seeds = seeds.clone();
    on_shard(move || {
        let seeds = run_seeds.clone();
        let ports = ports.clone();
        async move {
            let c = Rc::new(
                Cluster::connect(&seeds, Duration::from_secs(1))
                    .await
                    .expect("connect"),
            );
            keys_land_on_every_master_and_slots_agree(&c).await;
            many_calls_at_once_share_the_connections(&c).await;
            a_moved_slot_is_followed(&c, &ports).await;
            an_asked_slot_is_followed_once(&c, &ports).await;
        }
    });
    // A master killed: its slots fail fast and clearly; the others serve.
    let dead = redis.ports[2];
    cli(dead, &["SHUTDOWN", "NOSAVE"]);
    on_shard(move || {
        let seeds = seeds.clone();
        async move {
            let c = Cluster::connect(&seeds, Duration::from_millis(300))
                .await
                .expect("connect");
            let dead_addr: SocketAddr = format!("127.0.0.1:{dead}").parse().expect("addr");
            let on_dead = (0..)
                .map(|n| format!("d{n}"))
                .find(|k| c.master_of(k.as_bytes()) == Some(dead_addr))
                .expect("a key of the dead master");
            let started = Instant::now();
            let r = c
                .call(on_dead.as_bytes(), &[b"GET", on_dead.as_bytes()])
                .await;
            assert!(matches!(r, Err(RedisError::Unavailable(_))), "{r:?}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
            let alive = (0..)
                .map(|n| format!("a{n}"))
                .find(|k| c.master_of(k.as_bytes()).is_some_and(|a| a != dead_addr))
                .expect("a key of a live master");
            let set = c
                .call(alive.as_bytes(), &[b"SET", alive.as_bytes(), b"1"])
                .await;
            assert_eq!(set, Ok(Reply::Simple("OK".into())));
        }
    });
}

async fn keys_land_on_every_master_and_slots_agree(c: &Cluster) {
    let mut masters = std::collections::HashSet::new();
    for n in 0..200 {
        let key = format!("key:{n}");
        masters.insert(c.master_of(key.as_bytes()).expect("a master"));
        let value = n.to_string();
        let set = c
            .call(key.as_bytes(), &[b"SET", key.as_bytes(), value.as_bytes()])
            .await;
        assert_eq!(set, Ok(Reply::Simple("OK".into())));
        let got = c
            .call(key.as_bytes(), &[b"GET", key.as_bytes()])
            .await
            .expect("get");
        assert_eq!(bulk(got), Some(value));
        if n % 20 == 0 {
            let s = c
                .call(key.as_bytes(), &[b"CLUSTER", b"KEYSLOT", key.as_bytes()])
                .await;
            assert_eq!(s, Ok(Reply::Int(i64::from(slot(key.as_bytes())))));
        }
    }
    assert_eq!(masters.len(), 3, "200 keys spread over the 3 masters");
    let tagged = c
        .call(b"{g}.a", &[b"MSET", b"{g}.a", b"1", b"{g}.b", b"2"])
        .await;
    assert_eq!(
        tagged,
        Ok(Reply::Simple("OK".into())),
        "one hash tag, one slot"
    );
    let wrong = c.call(b"key:1", &[b"INCR", b"key:1", b"extra"]).await;
    assert!(matches!(wrong, Err(RedisError::Server(_))), "{wrong:?}");
}

async fn many_calls_at_once_share_the_connections(c: &Rc<Cluster>) {
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let c = c.clone();
            rt::spawn_task(async move {
                let key = format!("p:{n}");
                c.call(key.as_bytes(), &[b"INCRBY", key.as_bytes(), b"7"])
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await, Ok(Reply::Int(7)));
    }
}

/// Moves the (empty) slot of a fresh key from its master to another with
/// `CLUSTER SETSLOT … NODE` on every node: the client's map is stale, the
/// old master answers `MOVED`, the client reads the map again.
async fn a_moved_slot_is_followed(c: &Cluster, ports: &[u16]) {
    let key = key_in(slot(b"moving-key"));
    let from = c.master_of(key.as_bytes()).expect("master").port();
    let to = *ports.iter().find(|p| **p != from).expect("another master");
    let s = slot(key.as_bytes()).to_string();
    let to_id = node_id(to);
    for p in ports {
        cli(*p, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
    }
    let set = c
        .call(key.as_bytes(), &[b"SET", key.as_bytes(), b"moved"])
        .await;
    assert_eq!(set, Ok(Reply::Simple("OK".into())));
    assert_eq!(c.master_of(key.as_bytes()).map(|a| a.port()), Some(to));
    assert_eq!(cli(to, &["GET", &key]), "moved");
}

/// A slot being migrated: the source answers `ASK` for a key it does not
/// have, the client asks the target once (after `ASKING`) and keeps its map.
async fn an_asked_slot_is_followed_once(c: &Cluster, ports: &[u16]) {
    let key = key_in(slot(b"asked-key"));
    let from = c.master_of(key.as_bytes()).expect("master").port();
    let to = *ports.iter().find(|p| **p != from).expect("another master");
    let s = slot(key.as_bytes()).to_string();
    cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &node_id(from)]);
    cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &node_id(to)]);
    let set = c
        .call(key.as_bytes(), &[b"SET", key.as_bytes(), b"asked"])
        .await;
    assert_eq!(set, Ok(Reply::Simple("OK".into())));
    assert_eq!(
        c.master_of(key.as_bytes()).map(|a| a.port()),
        Some(from),
        "ASK changes no map"
    );
    let to_id = node_id(to);
    for p in ports {
        cli(*p, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
    }
    assert_eq!(cli(to, &["GET", &key]), "asked");
}
