//! E-mail addresses (the `email` channel's `to` and `from`).

/// A plausible `local@domain.tld` address: no full RFC 5322 parser (the
/// relay has the final word), just enough to catch typos and garbage.
pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"@<>()[],;:\"\\".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = s.len() <= 254
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}
