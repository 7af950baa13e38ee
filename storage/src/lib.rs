//! TEMPORARY shim of the storage API (replaced by the real crate on merge).
#![allow(missing_docs, clippy::unwrap_used)]
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("corrupt {path} at {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("poisoned")]
    Poisoned,
    #[error("storage full")]
    StorageFull,
    #[error("catalog: {0}")]
    Catalog(String),
}
pub type Result<T> = std::result::Result<T, Error>;

pub trait FileSystem: Send + Sync + 'static {}
pub struct StdFileSystem;
impl FileSystem for StdFileSystem {}

#[derive(Clone, Copy, Debug)]
pub enum Durability { Fsync, Interval, None }
#[derive(Clone, Copy, Debug)]
pub enum RecoveryMode { Strict, Repair }
#[derive(Clone, Debug)]
pub struct WalOptions { pub segment_size: u64, pub durability: Durability, pub recovery: RecoveryMode }
#[derive(Debug, Default)]
pub struct RecoveryReport { pub records: u64, pub segments: usize, pub truncated_tail_bytes: u64, pub repaired: Option<String>, pub next_lsn: u64 }

pub struct Wal { file: Arc<Mutex<std::fs::File>>, buf: Vec<u8>, lsn: u64, durable: u64, inflight: bool, dir: PathBuf }
pub struct FlushJob { file: Arc<Mutex<std::fs::File>>, buf: Vec<u8>, lsn: u64 }
pub struct FlushOutcome { lsn: u64, res: std::io::Result<()> }
impl FlushJob {
    pub fn run(self) -> FlushOutcome {
        let mut f = self.file.lock().unwrap();
        let res = f.write_all(&self.buf).and_then(|_| f.sync_data());
        FlushOutcome { lsn: self.lsn, res }
    }
}
impl Wal {
    pub fn open(dir: &Path, _fs: Arc<dyn FileSystem>, _o: WalOptions, mut visit: impl FnMut(u64, u8, &[u8])) -> Result<(Wal, RecoveryReport)> {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("shim.wal");
        let mut data = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&p) { f.read_to_end(&mut data).unwrap(); }
        let mut off = 0; let mut lsn = 0;
        while off + 5 <= data.len() {
            let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            if off + 5 + len > data.len() { break; }
            lsn += 1;
            visit(lsn, data[off + 4], &data[off + 5..off + 5 + len]);
            off += 5 + len;
        }
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&p).unwrap();
        Ok((Wal { file: Arc::new(Mutex::new(f)), buf: Vec::new(), lsn, durable: lsn, inflight: false, dir: dir.into() }, RecoveryReport { records: lsn, next_lsn: lsn + 1, ..Default::default() }))
    }
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64> {
        self.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.push(kind);
        self.buf.extend_from_slice(payload);
        self.lsn += 1;
        Ok(self.lsn)
    }
    pub fn pending_bytes(&self) -> usize { self.buf.len() }
    pub fn last_appended_lsn(&self) -> u64 { self.lsn }
    pub fn durable_lsn(&self) -> u64 { self.durable }
    pub fn flush_job(&mut self) -> Result<Option<FlushJob>> {
        if self.inflight || self.buf.is_empty() { return Ok(None); }
        self.inflight = true;
        Ok(Some(FlushJob { file: self.file.clone(), buf: std::mem::take(&mut self.buf), lsn: self.lsn }))
    }
    pub fn complete_flush(&mut self, done: FlushOutcome) -> Result<u64> {
        self.inflight = false;
        done.res.map_err(|_| Error::Poisoned)?;
        self.durable = done.lsn;
        Ok(done.lsn)
    }
    pub fn sync_job(&mut self) -> Option<FlushJob> { None }
    pub fn flush_blocking(&mut self) -> Result<u64> {
        match self.flush_job()? { Some(j) => { let o = j.run(); self.complete_flush(o) } None => Ok(self.durable) }
    }
    pub fn is_poisoned(&self) -> bool { false }
    pub fn dir(&self) -> &Path { &self.dir }
}
pub struct RecordInfo { pub segment: String, pub offset: u64, pub lsn: u64, pub kind: u8, pub len: usize }
pub fn inspect(dir: &Path, mut visit: impl FnMut(&RecordInfo, &[u8])) -> Result<RecoveryReport> {
    let (_w, r) = Wal::open(dir, Arc::new(StdFileSystem), WalOptions { segment_size: 0, durability: Durability::Fsync, recovery: RecoveryMode::Strict }, |lsn, kind, p| visit(&RecordInfo { segment: "shim".into(), offset: 0, lsn, kind, len: p.len() }, p))?;
    Ok(r)
}

pub trait Catalog: Send + Sync + 'static {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>>;
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<()>;
    fn delete(&self, table: &str, key: &str) -> Result<bool>;
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>>;
    fn scan_prefix(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
}
pub struct SledCatalog { m: Mutex<BTreeMap<(String, String), Vec<u8>>>, path: PathBuf }
impl SledCatalog {
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).unwrap();
        let p = path.join("shim.json");
        let m: BTreeMap<(String, String), Vec<u8>> = std::fs::read(&p).ok().map(|d| serde_json_shim(&d)).unwrap_or_default();
        Ok(SledCatalog { m: Mutex::new(m), path: p })
    }
    fn save(&self, m: &BTreeMap<(String, String), Vec<u8>>) {
        let mut out = Vec::new();
        for ((t, k), v) in m { for part in [t.as_bytes(), k.as_bytes(), v] { out.extend_from_slice(&(part.len() as u32).to_le_bytes()); out.extend_from_slice(part); } }
        std::fs::write(&self.path, out).unwrap();
    }
}
fn serde_json_shim(d: &[u8]) -> BTreeMap<(String, String), Vec<u8>> {
    let mut m = BTreeMap::new(); let mut off = 0; let mut parts = Vec::new();
    while off + 4 <= d.len() { let l = u32::from_le_bytes(d[off..off + 4].try_into().unwrap()) as usize; parts.push(d[off + 4..off + 4 + l].to_vec()); off += 4 + l;
        if parts.len() == 3 { let v = parts.pop().unwrap(); let k = String::from_utf8(parts.pop().unwrap()).unwrap(); let t = String::from_utf8(parts.pop().unwrap()).unwrap(); m.insert((t, k), v); } }
    m
}
impl Catalog for SledCatalog {
    fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>> { Ok(self.m.lock().unwrap().get(&(t.into(), k.into())).cloned()) }
    fn put(&self, t: &str, k: &str, v: &[u8]) -> Result<()> { let mut m = self.m.lock().unwrap(); m.insert((t.into(), k.into()), v.to_vec()); self.save(&m); Ok(()) }
    fn delete(&self, t: &str, k: &str) -> Result<bool> { let mut m = self.m.lock().unwrap(); let r = m.remove(&(t.into(), k.into())).is_some(); self.save(&m); Ok(r) }
    fn scan(&self, t: &str) -> Result<Vec<(String, Vec<u8>)>> { self.scan_prefix(t, "") }
    fn scan_prefix(&self, t: &str, p: &str) -> Result<Vec<(String, Vec<u8>)>> { Ok(self.m.lock().unwrap().iter().filter(|((tt, k), _)| tt == t && k.starts_with(p)).map(|((_, k), v)| (k.clone(), v.clone())).collect()) }
}
