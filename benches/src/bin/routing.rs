//! Routing-decision benchmark: one decision is what the engine does per
//! message on its owning shards — the carrier lookup in a 1,000,000-number
//! PNX table (with prefix fallback), the route rule of the customer (or `*`),
//! the smooth-weighted choice of a sender group among those with an
//! available sender, and the choice of the least-loaded sender in it.
//! Printed beside a baseline of the PNX lookup alone, measured in the same run.
//!
//! Usage: `routing [--seconds S] [--numbers N]` (defaults: 3 s, 1,000,000).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mcmp_engine::catalog::{SenderEntry, Snapshot};
use mcmp_engine::core::lifecycle::route::choose_sender;
use mcmp_engine::model::Channel;
use mcmp_engine::model::RouteTarget;
use mcmp_engine::routing::pnx::PnxTable;
use mcmp_engine::routing::rule::{GroupRatio, RouteRule};
use mcmp_engine::routing::swrr::Swrr;
use mcmp_engine::sender::live::SenderLive;
use mcmp_engine::sender::{Ability, SenderConfig, SimConfig, Transport};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CARRIERS: [&str; 3] = ["SKT", "KT", "LGT"];
const CUSTOMERS: usize = 1_000;

fn parse_args() -> Result<(f64, usize)> {
    let (mut seconds, mut numbers) = (3.0, 1_000_000);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => seconds = value.parse()?,
            "--numbers" => numbers = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok((seconds, numbers))
}

fn number(i: u64) -> String {
    format!("010{:08}", i % 100_000_000)
}

fn snapshot(numbers: usize) -> Snapshot {
    let mut pnx = PnxTable::with_prefixes(&[("010".into(), "SKT".into())]);
    for i in 0..numbers as u64 {
        pnx.insert(&number(i * 7919), CARRIERS[(i % 3) as usize]);
    }
    let mut senders = BTreeMap::new();
    for g in 0..4 {
        for n in 0..5 {
            let name = format!("G_S_{g}{n:02}");
            let live = Arc::new(SenderLive::new(2));
            live.session_changed(n % 2, true);
            let config = SenderConfig {
                name: name.clone(),
                group: format!("GROUP{g}"),
                channels: vec![Channel::Sms, Channel::Lms],
                carriers: vec!["*".into()],
                nat_cd: "82".into(),
                ability: Ability::Available,
                transport: Transport::Sim(SimConfig {
                    latency_ms: 1,
                    success_rate: 1.0,
                    dlr_delay_ms: 1,
                    tps: 0,
                }),
                remark: None,
                nodes: None,
            };
            senders.insert(name, SenderEntry { config, live });
        }
    }
    let mut routes = HashMap::new();
    for c in 0..CUSTOMERS {
        let g = format!("C{c:05}");
        let groups = |a: usize, b: usize| {
            vec![
                GroupRatio {
                    sender_group: format!("GROUP{a}"),
                    ratio: 2,
                },
                GroupRatio {
                    sender_group: format!("GROUP{b}"),
                    ratio: 1,
                },
            ]
        };
        let carriers = BTreeMap::from([
            ("SKT".to_string(), groups(0, 1)),
            ("KT".to_string(), groups(1, 2)),
            ("*".to_string(), groups(2, 3)),
        ]);
        routes.insert(
            (g.clone(), Channel::Sms),
            RouteRule {
                route_id: RouteRule::id(&g, Channel::Sms),
                group_code: g,
                channel: Channel::Sms,
                carriers,
                remark: None,
            },
        );
    }
    Snapshot {
        senders,
        routes,
        pnx: Arc::new(pnx),
        ..Snapshot::default()
    }
}

fn main() -> Result<()> {
    let (seconds, numbers) = parse_args()?;
    let built = Instant::now();
    let snap = snapshot(numbers);
    println!("setup: {numbers} PNX numbers, {CUSTOMERS} customers, 20 senders in 4 groups, built in {:?}", built.elapsed());
    let run_for = Duration::from_secs_f64(seconds);

    // Baseline: the PNX lookup alone.
    let (mut n, started) = (0u64, Instant::now());
    let mut hits = 0usize;
    while started.elapsed() < run_for {
        for _ in 0..1024 {
            hits += usize::from(snap.pnx.lookup(&number(n.wrapping_mul(7919))).0 != "UNKNOWN");
            n += 1;
        }
    }
    let base = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "baseline pnx_lookup: {base:.0} lookups/s ({:.0} ns each; {hits} found)",
        1e9 / base
    );

    // Full decisions.
    let mut swrr: HashMap<(String, String), Swrr> = HashMap::new();
    let mut per_sender: HashMap<String, u64> = HashMap::new();
    let (mut n, started) = (0u64, Instant::now());
    while started.elapsed() < run_for {
        for _ in 0..1024 {
            let group_code = format!("C{:05}", n % CUSTOMERS as u64);
            let to = number(n.wrapping_mul(7919));
            let carrier = snap.pnx.lookup(&to).0.to_string();
            let target = RouteTarget {
                channel: Channel::Sms,
                to,
                carrier,
            };
            let rule = snap.route(&group_code, Channel::Sms).context("rule")?;
            let key = rule.key_for(&target.carrier).context("key")?.to_string();
            let groups = &rule.carriers[&key];
            let weights: Vec<u32> = groups.iter().map(|g| g.ratio).collect();
            let available: Vec<bool> = groups
                .iter()
                .map(|g| {
                    snap.senders
                        .values()
                        .any(|e| e.config.group == g.sender_group && e.fits(&target))
                })
                .collect();
            let state = swrr
                .entry((rule.route_id.clone(), key))
                .or_insert_with(|| Swrr::new(&weights));
            let pick = state.pick(|i| available[i]).context("a group")?;
            let sender = choose_sender(&snap, &groups[pick].sender_group, &target, 0, None)
                .context("a sender")?;
            *per_sender.entry(sender.config.name.clone()).or_insert(0) += 1;
            n += 1;
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("routing_decision (pnx + rule + swrr group + sender): {rate:.0} decisions/s on one core ({:.0} ns each)", 1e9 / rate);
    println!("ratio to the PNX lookup alone: {:.2}", rate / base);
    println!("senders used: {}", per_sender.len());
    Ok(())
}
