//! A customer's API client and what the server keeps of its secrets
//! (SPEC §5.5): hashes only, see [`crate::secrets`].

use serde::{Deserialize, Serialize};

use crate::secrets::{HmacKey, SecretHash};

/// An API client of a customer. Its secret is shown once, at creation;
/// the server keeps only hashes of it (SPEC §5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ClientRow")]
pub struct Client {
    /// The client id (public).
    pub client_id: String,
    /// The owning customer.
    pub group_code: String,
    /// SHA-256 of the client secret: what authenticates it.
    pub secret_hash: SecretHash,
    /// The client secret as the HMAC key of `X-MCMP-Signature`.
    pub secret_key: HmacKey,
    /// Webhook URL for reports.
    pub report_uri: Option<String>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Webhook signing secrets (SPEC §5.5), newest first. Empty for a
    /// client created before they existed (until its first rotation).
    #[serde(default)]
    pub signing_secrets: Vec<SigningSecret>,
}

/// A stored client as written by any version: before secrets were hashed
/// a row held the client secret in clear (hashed when read, and the row
/// rewritten at start, see [`SharedCatalog::hash_clear_secrets`]).
#[derive(Deserialize)]
struct ClientRow {
    client_id: String,
    group_code: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_hash: Option<SecretHash>,
    #[serde(default)]
    secret_key: Option<HmacKey>,
    report_uri: Option<String>,
    created_at_ms: i64,
    #[serde(default)]
    signing_secrets: Vec<SigningSecret>,
}

impl TryFrom<ClientRow> for Client {
    type Error = &'static str;

    fn try_from(row: ClientRow) -> Result<Client, &'static str> {
        let (secret_hash, secret_key) = match (row.secret_hash, row.secret_key, row.secret) {
            (Some(hash), Some(key), _) => (hash, key),
            (_, _, Some(clear)) => (SecretHash::of(&clear), HmacKey::new(clear.as_bytes())),
            _ => return Err("a client needs secret_hash and secret_key"),
        };
        Ok(Client {
            client_id: row.client_id,
            group_code: row.group_code,
            secret_hash,
            secret_key,
            report_uri: row.report_uri,
            created_at_ms: row.created_at_ms,
            signing_secrets: row.signing_secrets,
        })
    }
}

/// A webhook signing secret (SPEC §5.5; shown as `whsec_` + base64 of 32
/// random bytes, the Standard Webhooks form), kept as its HMAC key, and
/// when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SigningSecretRow")]
pub struct SigningSecret {
    /// The decoded secret as an HMAC key.
    pub key: HmacKey,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

/// A stored signing secret as written by any version (before, the
/// `whsec_…` text in clear).
#[derive(Deserialize)]
struct SigningSecretRow {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    key: Option<HmacKey>,
    created_at_ms: i64,
}

impl TryFrom<SigningSecretRow> for SigningSecret {
    type Error = &'static str;

    fn try_from(row: SigningSecretRow) -> Result<SigningSecret, &'static str> {
        let key = match (row.key, row.secret) {
            (Some(key), _) => key,
            (None, Some(text)) => {
                SigningSecret::decode(&text).ok_or("a signing secret is whsec_ + base64")?
            }
            (None, None) => return Err("a signing secret needs its key"),
        };
        Ok(SigningSecret {
            key,
            created_at_ms: row.created_at_ms,
        })
    }
}

impl SigningSecret {
    /// The HMAC key of `whsec_…` text (the base64 part, decoded).
    pub fn decode(text: &str) -> Option<HmacKey> {
        use base64::Engine as _;
        let encoded = text.strip_prefix(SIGNING_SECRET_PREFIX).unwrap_or(text);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        Some(HmacKey::new(&key))
    }
}

/// The prefix of a signing secret.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

impl Client {
    /// A client of `group_code` whose secret is `secret` (kept hashed).
    pub fn new(client_id: String, group_code: String, secret: &str, created_at_ms: i64) -> Client {
        Client {
            client_id,
            group_code,
            secret_hash: SecretHash::of(secret),
            secret_key: HmacKey::new(secret.as_bytes()),
            report_uri: None,
            created_at_ms,
            signing_secrets: Vec::new(),
        }
    }

    /// The HMAC keys that sign a webhook at `now_ms`: the newest secret,
    /// and each older one until `overlap_ms` after the one that replaced it.
    pub fn signing_keys(&self, now_ms: i64, overlap_ms: i64) -> Vec<HmacKey> {
        let mut keys = Vec::new();
        let mut replaced_at = None;
        for s in &self.signing_secrets {
            if replaced_at.is_none_or(|at: i64| now_ms < at.saturating_add(overlap_ms)) {
                keys.push(s.key.clone());
            }
            replaced_at = Some(s.created_at_ms);
        }
        keys
    }

    /// Adds `secret` as the newest and forgets those no longer signing.
    pub fn rotate(&mut self, secret: SigningSecret, overlap_ms: i64) {
        let now = secret.created_at_ms;
        self.signing_secrets.insert(0, secret);
        let mut replaced_at = now;
        self.signing_secrets.retain(|s| {
            let keep = s.created_at_ms == now || now < replaced_at.saturating_add(overlap_ms);
            replaced_at = s.created_at_ms;
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mcmp_storage::{Catalog, SledCatalog};

    use super::*;
    use crate::catalog::{get, table, SharedCatalog};

    /// A row as versions before hashing wrote it: both secrets in clear.
    const OLD_ROW: &str = r#"{"client_id":"c_1","group_code":"G","secret":"s3cret-in-clear",
        "report_uri":null,"created_at_ms":5,
        "signing_secrets":[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","created_at_ms":5}]}"#;

    #[test]
    fn a_row_with_secrets_in_clear_is_rewritten_with_their_hashes_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Catalog> = Arc::new(SledCatalog::open(dir.path()).expect("open"));
        store
            .put(table::CLIENTS, "c_1", OLD_ROW.as_bytes())
            .expect("put");
        let catalog = SharedCatalog::new(store.clone(), 1, Vec::new());
        assert_eq!(catalog.hash_clear_secrets().expect("hash"), 1);
        assert_eq!(catalog.hash_clear_secrets().expect("again"), 0);
        let raw = store.get(table::CLIENTS, "c_1").expect("get").expect("row");
        let raw = String::from_utf8(raw).expect("utf-8");
        assert!(
            !raw.contains("s3cret-in-clear") && !raw.contains("MfKQ9r8G"),
            "{raw}"
        );
        let c: Client = get(store.as_ref(), table::CLIENTS, "c_1")
            .expect("parse")
            .expect("row");
        assert!(c.secret_hash.matches("s3cret-in-clear"));
        assert_eq!(c.secret_key, HmacKey::new(b"s3cret-in-clear"));
        let whsec = SigningSecret::decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(c.signing_keys(5, 0), vec![whsec.expect("key")]);
    }

    #[test]
    fn a_row_without_any_secret_is_refused() {
        let row = r#"{"client_id":"c_1","group_code":"G","report_uri":null,"created_at_ms":5}"#;
        assert!(serde_json::from_str::<Client>(row).is_err());
    }
}
