//! Route parity (SPEC §5.9): every route the router answers is described
//! by `docs/openapi.json`, and the document describes no route the router
//! lacks. The routes are read from this router's source: its match arms
//! are the one list of routes there is.

use std::collections::BTreeSet;

/// (METHOD, path with every parameter written `{}`).
type Route = (String, String);

/// The routes of the router's match arms. `route` matches whole paths
/// (an arm without a method guard is a GET); `customer` matches under
/// `/v1`, the two admin tables under `/admin/v1`. Arms that delegate
/// (`rest @ ..`), catch all (`_`, `..`) or answer 405 are not routes.
fn router_routes() -> BTreeSet<Route> {
    let mut out = BTreeSet::new();
    let mut prefix: Option<&str> = None;
    for line in include_str!("router.rs").lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if let Some(name) = fn_name(line) {
            prefix = match name {
                "route" => Some(""),
                "customer" => Some("/v1"),
                "admin" | "admin_customer_table" | "admin_clients" | "admin_routing_table" => {
                    Some("/admin/v1")
                }
                _ => None,
            };
            continue;
        }
        let Some(prefix) = prefix else { continue };
        if line.contains("method_not_allowed") || line.contains("..") {
            continue;
        }
        let arm = match prefix {
            "" => top_level_arm(line),
            _ => method_arm(line),
        };
        if let Some((method, segments)) = arm {
            out.insert((method, format!("{prefix}/{}", segments.join("/"))));
        }
    }
    out
}

fn fn_name(line: &str) -> Option<&str> {
    let rest = line.split_once("fn ")?.1;
    let before = line.split_once("fn ")?.0;
    if !before
        .chars()
        .all(|c| c.is_ascii_lowercase() || "() ".contains(c))
    {
        return None;
    }
    rest.split(['(', '<']).next()
}

/// `["a", b] if req.method() == Method::POST =>` → (POST, [a, {}]).
fn top_level_arm(line: &str) -> Option<(String, Vec<String>)> {
    let inner = line.strip_prefix('[')?.split_once(']')?;
    let (list, tail) = inner;
    if !tail.contains("=>") {
        return None;
    }
    let method = match tail.split_once("Method::") {
        Some((_, m)) => m.split(|c: char| !c.is_ascii_uppercase()).next()?,
        None => "GET",
    };
    Some((method.to_string(), segments(list)?))
}

/// `(Method::PUT, ["customers", g]) =>` → (PUT, [customers, {}]).
fn method_arm(line: &str) -> Option<(String, Vec<String>)> {
    let rest = line.strip_prefix("(Method::")?;
    let (method, rest) = rest.split_once(", [")?;
    let (list, _) = rest.split_once("])")?;
    Some((method.to_string(), segments(list)?))
}

fn segments(list: &str) -> Option<Vec<String>> {
    list.split(',')
        .map(str::trim)
        .map(
            |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(lit) => Some(lit.to_string()),
                None if !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Some("{}".to_string())
                }
                None => None,
            },
        )
        .collect()
}

/// The routes `docs/openapi.json` describes.
fn documented_routes() -> BTreeSet<Route> {
    let doc: serde_json::Value =
        serde_json::from_str(super::ops::OPENAPI).expect("docs/openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let generic: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), generic.clone()));
        }
    }
    out
}

#[test]
fn the_openapi_document_describes_exactly_the_routes_the_router_answers() {
    let routed = router_routes();
    let documented = documented_routes();
    assert!(
        routed.len() > 40,
        "the parser must see the router's arms: {routed:?}"
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}; \
         documented but not routed: {unrouted:?}"
    );
}

#[test]
fn the_parser_reads_each_kind_of_arm() {
    assert_eq!(
        method_arm(r#"(Method::PATCH, ["customers", g, "clients", c]) => {"#),
        Some((
            "PATCH".into(),
            vec![
                "customers".into(),
                "{}".into(),
                "clients".into(),
                "{}".into()
            ]
        ))
    );
    assert_eq!(
        top_level_arm(
            r#"["provider", "v1", "reports", sender] if req.method() == Method::POST => {"#
        ),
        Some((
            "POST".into(),
            vec![
                "provider".into(),
                "v1".into(),
                "reports".into(),
                "{}".into()
            ]
        ))
    );
    assert_eq!(
        top_level_arm(r#"["healthz"] => ops::healthz(),"#),
        Some(("GET".into(), vec!["healthz".into()]))
    );
    assert_eq!(
        fn_name("async fn admin_routing_table("),
        Some("admin_routing_table")
    );
}
