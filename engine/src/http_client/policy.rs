//! Where a client may post (SPEC §5.5): a customer's `report_uri` must be
//! `https://` and reach a public address unless the operator allows
//! otherwise (`reports.allow-http`, `reports.allow-private`).

use std::net::IpAddr;

/// Where a client may post: customers' webhook endpoints are held to
/// `https://` and public addresses unless the operator allows otherwise;
/// providers and alerts, which the operator configures, are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// `http://` is allowed.
    pub allow_http: bool,
    /// Loopback, private and link-local addresses are allowed.
    pub allow_private: bool,
}

impl UrlPolicy {
    /// No restriction.
    pub const ANY: UrlPolicy = UrlPolicy {
        allow_http: true,
        allow_private: true,
    };
}

/// Whether `ip` is a public address: not loopback, private (RFC 1918,
/// IPv6 unique local), link-local, shared (RFC 6598) or unspecified. An
/// IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || shared)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        let public = [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ];
        let not = [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in not {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
