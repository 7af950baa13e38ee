//! The catalog: what the operator registers (customers, services, clients,
//! bill codes, caller IDs), stored in the [`mcmp_storage::Catalog`] and held
//! by every shard as an immutable [`Snapshot`].
//!
//! Writes go to the store on the blocking pool, then a fresh snapshot is built
//! and broadcast over the mesh; shards never read the store on the hot path.
//! [`SharedCatalog`] crosses cores (it is `Send + Sync`); a shard holds an
//! `Arc<Snapshot>` and swaps it when a newer generation arrives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mcmp_storage::Catalog;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::Channel;
use crate::policy::SpamKeywords;
use crate::routing::pnx::PnxTable;
use crate::routing::rule::RouteRule;
use crate::sender::live::SenderLive;
use crate::sender::SenderConfig;

mod client;
pub use client::{Client, SigningSecret, SIGNING_SECRET_PREFIX};

/// Store table names.
pub mod table {
    /// Customers by group code.
    pub const CUSTOMERS: &str = "customers";
    /// Services (per-channel settings) by group code.
    pub const SERVICES: &str = "services";
    /// Clients by client id.
    pub const CLIENTS: &str = "clients";
    /// Bill codes by `group_code/bill_code`.
    pub const BILL_CODES: &str = "bill_codes";
    /// Caller IDs by `group_code/number`.
    pub const CALLER_IDS: &str = "caller_ids";
    /// Server metadata (the JWT signing key, ...).
    pub const META: &str = "meta";
    /// Senders by name.
    pub const SENDERS: &str = "senders";
    /// Route rules by `group_code/CHANNEL`.
    pub const ROUTES: &str = "routes";
    /// Number portability: national number → carrier.
    pub const PNX: &str = "pnx";
    /// Operator spam keywords (key = the keyword).
    pub const SPAM_KEYWORDS: &str = "spam_keywords";
    /// Opt-outs by `group_code/number`.
    pub const OPT_OUTS: &str = "opt_outs";
    /// A reseller's origin codes by `group_code/code` (SPEC §5.11).
    pub const ORIGIN_CODES: &str = "origin_codes";
    /// Console operators by name (SPEC §5.7).
    pub const OPERATORS: &str = "operators";
    /// The audit log of admin changes by `at_ms/seq` (not in the snapshot).
    pub const AUDIT: &str = "audit";

    /// Every table.
    pub const ALL: [&str; 14] = [
        CUSTOMERS,
        SERVICES,
        CLIENTS,
        BILL_CODES,
        CALLER_IDS,
        META,
        SENDERS,
        ROUTES,
        PNX,
        SPAM_KEYWORDS,
        OPT_OUTS,
        ORIGIN_CODES,
        OPERATORS,
        AUDIT,
    ];
}

/// What an operator may do (SPEC §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also senders, queues, routes and redrives.
    Operator,
    /// Everything, operators included.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A console operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// The login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its password as an argon2id PHC string (never shown).
    pub password_hash: String,
    /// Creation (or last change), unix ms.
    pub updated_at_ms: i64,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The tenant key, e.g. `A000005`.
    pub group_code: String,
    /// Display name.
    pub name: String,
    /// Reseller flag (SPEC §5.11): every message must carry a registered
    /// `origin_code`, and spam keywords are matched strictly.
    pub vas: bool,
    /// Whether messages are paid from `balance`.
    pub prepaid: bool,
    /// The operator's credit in minor currency units, as last set; the
    /// available balance is this minus the charges since it was set.
    pub balance: i64,
    /// Net charges (from the WALs) when `balance` was set.
    #[serde(default)]
    pub charges_offset: i64,
}

/// The settings of one channel for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelService {
    /// Whether the customer may send on the channel.
    pub enabled: bool,
    /// Accepted messages per second; 0 = no limit.
    pub tps: u32,
    /// Messages accepted and not final yet; beyond, 3014 (SPEC §5.3).
    /// 0 = no limit.
    #[serde(default)]
    pub max_backlog: u32,
}

/// A customer's services: per channel settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Services {
    /// Channel → settings; a channel not listed is disabled.
    pub channels: BTreeMap<Channel, ChannelService>,
}

/// A bill code of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillCode {
    /// The code.
    pub bill_code: String,
    /// Messages under this code are advertisements.
    pub ad: bool,
    /// The traffic class of its messages that name no `priority` (SPEC
    /// §5.2; default `realtime`).
    #[serde(default)]
    pub class: crate::model::Class,
}

/// Everything a shard needs to know about one customer at accept.
#[derive(Debug, Clone, Default)]
pub struct CustomerView {
    /// The customer row.
    pub customer: Option<Customer>,
    /// Per-channel settings.
    pub services: Services,
    /// Bill codes by code.
    pub bill_codes: HashMap<String, BillCode>,
    /// Registered caller IDs.
    pub caller_ids: HashSet<String>,
    /// Numbers that refused this customer's ads.
    pub opt_outs: HashSet<String>,
    /// The origin codes registered for this customer (SPEC §5.11).
    pub origin_codes: HashSet<String>,
}

impl CustomerView {
    /// Whether the customer is a reseller (`vas`, SPEC §5.11).
    pub fn is_reseller(&self) -> bool {
        self.customer.as_ref().is_some_and(|c| c.vas)
    }

    /// The settings of `channel` (disabled when not configured).
    pub fn service(&self, channel: Channel) -> ChannelService {
        self.services
            .channels
            .get(&channel)
            .copied()
            .unwrap_or_default()
    }
}

/// A sender's configuration with its live state.
#[derive(Debug, Clone)]
pub struct SenderEntry {
    /// As configured.
    pub config: SenderConfig,
    /// Shared live state (kept across snapshots).
    pub live: Arc<SenderLive>,
}

impl SenderEntry {
    /// Whether this sender can carry `target` now: available, bound,
    /// healthy, on the channel, and reaching the carrier (or the country).
    pub fn fits(&self, target: &crate::model::RouteTarget) -> bool {
        let c = &self.config;
        if c.ability != crate::sender::Ability::Available
            || self.live.connected() == 0
            || !self.live.healthy_now()
            || !c.channels.contains(&target.channel)
        {
            return false;
        }
        let reaches = |k: &str| c.carriers.iter().any(|x| x == k || x == "*");
        if target.carrier == "INTL" {
            reaches("INTL") && target.to.starts_with(&format!("+{}", c.nat_cd))
        } else {
            reaches(&target.carrier) && c.nat_cd == "82"
        }
    }
}

/// An immutable view of the whole catalog, one per generation.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Monotonic generation; shards keep the newest.
    pub generation: u64,
    /// Customers by group code.
    pub customers: HashMap<String, CustomerView>,
    /// Clients by client id.
    pub clients: HashMap<String, Client>,
    /// Senders by name.
    pub senders: BTreeMap<String, SenderEntry>,
    /// Route rules by customer (or `*`) and channel.
    pub routes: HashMap<(String, Channel), RouteRule>,
    /// Number portability with prefix fallback.
    pub pnx: Arc<PnxTable>,
    /// Operator spam keywords.
    pub spam: Arc<SpamKeywords>,
    /// Console operators by name.
    pub operators: HashMap<String, Operator>,
    /// The API address of every node of a cluster (SPEC §5.8), by node id:
    /// where a read of another node's message is forwarded.
    pub nodes: HashMap<u8, String>,
}

/// The `meta` key under which node `id` of a cluster keeps its API address.
pub fn node_key(id: u8) -> String {
    format!("node/{id}")
}

impl Snapshot {
    /// The rule for a customer's channel, else the `*` rule.
    pub fn route(&self, group_code: &str, channel: Channel) -> Option<&RouteRule> {
        self.routes
            .get(&(group_code.to_string(), channel))
            .or_else(|| self.routes.get(&("*".to_string(), channel)))
    }
}

/// A catalog failure.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store failed.
    #[error("catalog store: {0}")]
    Store(#[from] mcmp_storage::Error),
    /// A stored row is not valid JSON for its type.
    #[error("catalog row {table}/{key} is unreadable: {reason}")]
    BadRow {
        /// Table.
        table: &'static str,
        /// Key.
        key: String,
        /// Parser message.
        reason: String,
    },
}

/// The catalog store shared by all shards (used off the hot path only).
pub struct SharedCatalog {
    store: Arc<dyn Catalog>,
    /// Serializes write + rebuild so generations are ordered like writes.
    write_lock: Mutex<()>,
    generation: AtomicU64,
    shards: usize,
    live: Mutex<HashMap<String, Arc<SenderLive>>>,
    prefixes: Vec<(String, String)>,
    pnx: Mutex<Option<Arc<PnxTable>>>,
    spam: Mutex<Option<Arc<SpamKeywords>>>,
}

impl SharedCatalog {
    /// Wraps a store for an engine of `shards` shards; `prefixes` is the
    /// configured prefix → carrier fallback of the PNX lookup.
    pub fn new(
        store: Arc<dyn Catalog>,
        shards: usize,
        prefixes: Vec<(String, String)>,
    ) -> SharedCatalog {
        SharedCatalog {
            store,
            write_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
            shards,
            live: Mutex::new(HashMap::new()),
            prefixes,
            pnx: Mutex::new(None),
            spam: Mutex::new(None),
        }
    }

    /// Rewrites every client row an older version stored with its secrets
    /// in clear, keeping only their hashes; how many. Run once at start.
    pub fn hash_clear_secrets(&self) -> Result<usize, CatalogError> {
        let mut rewritten = 0;
        for (key, bytes) in self.store().scan(table::CLIENTS)? {
            let row: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let clear = row.get("secret").is_some()
                || row["signing_secrets"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s.get("secret").is_some()));
            if clear {
                let client: Client = parse(table::CLIENTS, &key, &bytes)?;
                put(self.store(), table::CLIENTS, &key, &client)?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// Forgets the cached keyword automaton (after a keyword write).
    pub fn invalidate_spam(&self) {
        *self.spam.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn spam_keywords(&self) -> Result<Arc<SpamKeywords>, CatalogError> {
        let mut cached = self.spam.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let words: Vec<String> = self
            .store
            .scan(table::SPAM_KEYWORDS)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let keywords = Arc::new(SpamKeywords::new(words));
        *cached = Some(keywords.clone());
        Ok(keywords)
    }

    /// Forgets the cached PNX table so the next snapshot reloads it (after a
    /// PNX write).
    pub fn invalidate_pnx(&self) {
        *self.pnx.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn pnx_table(&self) -> Result<Arc<PnxTable>, CatalogError> {
        let mut cached = self.pnx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let mut table = PnxTable::with_prefixes(&self.prefixes);
        for (number, carrier) in self.store.scan(table::PNX)? {
            table.insert(&number, String::from_utf8_lossy(&carrier).trim_matches('"'));
        }
        let table = Arc::new(table);
        *cached = Some(table.clone());
        Ok(table)
    }

    fn live_state(&self, name: &str) -> Arc<SenderLive> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.entry(name.to_string())
            .or_insert_with(|| Arc::new(SenderLive::new(self.shards)))
            .clone()
    }

    /// The store, for reads off the hot path (admin GETs).
    pub fn store(&self) -> &dyn Catalog {
        self.store.as_ref()
    }

    /// Runs `write` against the store and builds the snapshot that follows it.
    /// Blocking: call from the blocking pool.
    pub fn write<T>(
        &self,
        write: impl FnOnce(&dyn Catalog) -> Result<T, CatalogError>,
    ) -> Result<(T, Arc<Snapshot>), CatalogError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let out = write(self.store.as_ref())?;
        let snapshot = self.load()?;
        Ok((out, Arc::new(snapshot)))
    }

    /// Takes in what other nodes changed in a shared catalog
    /// ([`Catalog::pull`]); the snapshot that follows, if anything changed.
    /// Blocking.
    pub fn pull(&self) -> Result<Option<Arc<Snapshot>>, CatalogError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if !self.store.pull()? {
            return Ok(None);
        }
        self.invalidate_spam();
        Ok(Some(Arc::new(self.load()?)))
    }

    /// Builds a snapshot of the current store. Blocking.
    pub fn load(&self) -> Result<Snapshot, CatalogError> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut snap = Snapshot {
            generation,
            ..Snapshot::default()
        };
        for (g, c) in scan::<Customer>(self.store(), table::CUSTOMERS)? {
            snap.customers.entry(g).or_default().customer = Some(c);
        }
        for (g, s) in scan::<Services>(self.store(), table::SERVICES)? {
            snap.customers.entry(g).or_default().services = s;
        }
        for (key, b) in scan::<BillCode>(self.store(), table::BILL_CODES)? {
            if let Some((g, _)) = key.split_once('/') {
                let view = snap.customers.entry(g.to_string()).or_default();
                view.bill_codes.insert(b.bill_code.clone(), b);
            }
        }
        self.load_keys(&mut snap, table::CALLER_IDS, |v| &mut v.caller_ids)?;
        for (id, c) in scan::<Client>(self.store(), table::CLIENTS)? {
            snap.clients.insert(id, c);
        }
        for (name, mut config) in scan::<SenderConfig>(self.store(), table::SENDERS)? {
            config.name = name.clone();
            let live = self.live_state(&name);
            snap.senders.insert(name, SenderEntry { config, live });
        }
        for (_, rule) in scan::<RouteRule>(self.store(), table::ROUTES)? {
            snap.routes
                .insert((rule.group_code.clone(), rule.channel), rule);
        }
        self.load_keys(&mut snap, table::OPT_OUTS, |v| &mut v.opt_outs)?;
        self.load_keys(&mut snap, table::ORIGIN_CODES, |v| &mut v.origin_codes)?;
        snap.operators = scan::<Operator>(self.store(), table::OPERATORS)?
            .into_iter()
            .collect();
        for (key, url) in self.store.scan_prefix(table::META, "node/")? {
            if let Some(id) = key.strip_prefix("node/").and_then(|n| n.parse().ok()) {
                snap.nodes
                    .insert(id, String::from_utf8_lossy(&url).into_owned());
            }
        }
        snap.pnx = self.pnx_table()?;
        snap.spam = self.spam_keywords()?;
        Ok(snap)
    }

    /// Adds the rows of a `group_code/key` table with no value (caller IDs,
    /// opt-outs, origin codes) to the set `set` picks in each customer's view.
    fn load_keys(
        &self,
        snap: &mut Snapshot,
        table: &'static str,
        set: impl Fn(&mut CustomerView) -> &mut HashSet<String>,
    ) -> Result<(), CatalogError> {
        for (key, ()) in scan::<()>(self.store(), table)? {
            if let Some((g, k)) = key.split_once('/') {
                set(snap.customers.entry(g.to_string()).or_default()).insert(k.to_string());
            }
        }
        Ok(())
    }
}

/// Reads and parses one row.
pub fn get<T: DeserializeOwned>(
    store: &dyn Catalog,
    table: &'static str,
    key: &str,
) -> Result<Option<T>, CatalogError> {
    store
        .get(table, key)?
        .map(|bytes| parse(table, key, &bytes))
        .transpose()
}

/// Writes one row as JSON.
pub fn put<T: Serialize>(
    store: &dyn Catalog,
    table: &'static str,
    key: &str,
    value: &T,
) -> Result<(), CatalogError> {
    let bytes = serde_json::to_vec(value).map_err(|e| CatalogError::BadRow {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok(store.put(table, key, &bytes)?)
}

/// Reads and parses at most `limit` rows of a table after the key `after`
/// (from the first when it is empty), in key order.
pub fn scan_after<T: DeserializeOwned>(
    store: &dyn Catalog,
    table: &'static str,
    after: &str,
    limit: usize,
) -> Result<Vec<(String, T)>, CatalogError> {
    store
        .scan_after(table, after, limit)?
        .into_iter()
        .map(|(k, v)| parse(table, &k, &v).map(|t| (k, t)))
        .collect()
}

/// Reads and parses every row of a table (or of a key prefix).
pub fn scan_prefix<T: DeserializeOwned>(
    store: &dyn Catalog,
    table: &'static str,
    prefix: &str,
) -> Result<Vec<(String, T)>, CatalogError> {
    store
        .scan_prefix(table, prefix)?
        .into_iter()
        .map(|(k, v)| parse(table, &k, &v).map(|t| (k, t)))
        .collect()
}

fn scan<T: DeserializeOwned>(
    store: &dyn Catalog,
    table: &'static str,
) -> Result<Vec<(String, T)>, CatalogError> {
    scan_prefix(store, table, "")
}

fn parse<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, CatalogError> {
    serde_json::from_slice(bytes).map_err(|e| CatalogError::BadRow {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}
