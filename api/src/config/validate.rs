//! The ranges of the configuration's values, checked once at start-up
//! (`mcmp check-config` too); an error names the key.

use std::time::Duration;

use super::*;

impl Config {
    fn validate_admin(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.admin.token {
            if token.is_empty() || token.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "admin.token",
                    "must be non-empty without whitespace",
                ));
            }
        }
        if let Some(hash) = &self.admin.token_sha256 {
            if mcmp_engine::secrets::SecretHash::from_hex(hash).is_none() {
                return Err(invalid("admin.token-sha256", "must be 64 hex digits"));
            }
        }
        Ok(())
    }

    /// Checks every value's range once at start-up; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_admin()?;
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        let wal = &self.wal;
        if wal.segment_size < MIN_SEGMENT_SIZE {
            return Err(invalid("wal.segment-size", "must be at least 64KiB"));
        }
        if wal.durability == Durability::Interval && wal.sync_interval.is_zero() {
            return Err(invalid(
                "wal.sync-interval",
                "must be > 0 with durability = \"interval\"",
            ));
        }
        let r = &self.reports;
        if r.endpoint_queue == 0 {
            return Err(invalid("reports.endpoint-queue", "must be at least 1"));
        }
        if !(1..=MAX_WEBHOOK_ATTEMPTS).contains(&r.max_attempts) {
            return Err(invalid("reports.max-attempts", "must be between 1 and 20"));
        }
        self.validate_dedup()?;
        let positive = [
            ("wal.checkpoint-interval", wal.checkpoint_interval),
            ("dedup.window", self.dedup.window),
            ("reports.retry-unit", r.retry_unit),
            ("reports.webhook-timeout", r.webhook_timeout),
            ("reports.retention", r.retention),
            ("routing.hold-timeout", self.routing.hold_timeout),
            ("routing.validity", self.routing.validity),
            ("agents.heartbeat-interval", self.agents.heartbeat_interval),
        ];
        non_zero(&positive)?;
        let caps = [
            ("reports.retention", r.retention, 400 * 86_400, "400d"),
            ("routing.validity", self.routing.validity, 259_200, "3d"),
            (
                "reports.secret-overlap",
                r.secret_overlap,
                30 * 86_400,
                "30d",
            ),
        ];
        if let Some((key, .., max)) = caps.iter().find(|c| c.1 > Duration::from_secs(c.2)) {
            return Err(invalid(key, format!("must be at most {max}")));
        }
        for channel in Channel::ALL {
            if self.pricing.price(channel) < 0 {
                return Err(invalid(&format!("pricing.{channel}"), "must be >= 0"));
            }
        }
        self.validate_carriers()?;
        if let Some(url) = &self.alerts.webhook_url {
            mcmp_engine::check_url(url).map_err(|e| {
                invalid("alerts.webhook-url", format!("`{url}` is not usable: {e}"))
            })?;
        }
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        self.validate_tls()
    }

    /// `[dedup]` against itself and `reports.retention`.
    fn validate_dedup(&self) -> Result<(), ConfigError> {
        if self.dedup.window > self.reports.retention {
            return Err(invalid(
                "dedup.window",
                "must be at most reports.retention (a re-send is confirmed against the original message, which must still be readable)",
            ));
        }
        if self.dedup.exact_for < Duration::from_secs(1) {
            return Err(invalid("dedup.exact-for", "must be at least 1s"));
        }
        if !(1..=64).contains(&self.dedup.fingerprint_bits) {
            return Err(invalid(
                "dedup.fingerprint-bits",
                "must be between 1 and 64",
            ));
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.listen.parse::<SocketAddr>().is_err() {
            let msg = format!("`{}` is not an address like 127.0.0.1:8080", s.listen);
            return Err(invalid("server.listen", msg));
        }
        if let Some(url) = &s.public_url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(invalid(
                    "server.public-url",
                    "must start with http:// or https://",
                ));
            }
        }
        if mcmp_engine::parse_time_of_day(&self.reports.digest_at).is_none() {
            return Err(invalid(
                "reports.digest-at",
                "must be HH:MM or HH:MM:SS (Asia/Seoul time)",
            ));
        }
        if s.data_dir.as_os_str().is_empty() {
            return Err(invalid("server.data-dir", "must not be empty"));
        }
        if s.shards > MAX_SHARDS {
            return Err(invalid(
                "server.shards",
                format!("must be at most {MAX_SHARDS}"),
            ));
        }
        if s.max_body < MIN_MAX_BODY {
            return Err(invalid("server.max-body", "must be at least 1KiB"));
        }
        if !(MIN_MAX_HEAD..=MAX_MAX_HEAD).contains(&s.max_head) {
            return Err(invalid("server.max-head", "must be between 8KiB and 1MiB"));
        }
        non_zero(&[
            ("server.header-read-timeout", s.header_read_timeout),
            ("server.idle-timeout", s.idle_timeout),
        ])
    }

    fn validate_carriers(&self) -> Result<(), ConfigError> {
        for (prefix, carrier) in &self.carriers.prefixes {
            let key = format!("carriers.prefixes.\"{prefix}\"");
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(&key, "a prefix must be digits"));
            }
            if !CARRIERS.contains(&carrier.as_str()) {
                let msg = format!("`{carrier}` is not one of SKT, KT, LGT, UNKNOWN");
                return Err(invalid(&key, msg));
            }
        }
        Ok(())
    }
}

fn non_zero(values: &[(&str, Duration)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, d)| d.is_zero()) {
        Some((key, _)) => Err(invalid(key, "must be greater than 0")),
        None => Ok(()),
    }
}
