//! Issue 17: the container image and the Kubernetes manifests agree with
//! the server's configuration (ports, probe paths, the data dir, the
//! shutdown grace). Docker is not on every machine, so the Dockerfile is
//! parsed rather than built.

use std::path::PathBuf;
use std::time::Duration;

use mcmp_api::config::Config;
use serde_yaml::Value as Yaml;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's instructions: (KEYWORD, arguments), continuation lines
/// joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (k, v) = current.split_once(' ').unwrap_or((current.as_str(), ""));
                out.push((k.to_uppercase(), v.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// The port of a `host:port` listen address.
fn port(listen: &str) -> u16 {
    listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let ins = dockerfile();
    let froms: Vec<&str> = ins
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(froms.len(), 2, "a build and a runtime stage: {froms:?}");
    assert!(froms[0].starts_with("rust:") && froms[0].ends_with(" AS build"));
    assert!(
        froms[1].contains("-slim"),
        "a small runtime image: {}",
        froms[1]
    );
    let runtime = ins
        .iter()
        .rposition(|(k, _)| k == "FROM")
        .map(|i| &ins[i..])
        .expect("runtime stage");
    let value = |key: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let user = value("USER");
    assert_eq!(user.len(), 1);
    assert!(!["root", "0"].contains(&user[0]), "non-root: {user:?}");
    assert!(value("COPY").iter().any(|c| c.starts_with("--from=build ")));
    let defaults = Config::default();
    let env = value("ENV").join(" ");
    let listen = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("MCMP_LISTEN="))
        .expect("MCMP_LISTEN");
    assert_eq!(value("EXPOSE"), vec![port(listen).to_string()]);
    assert_eq!(
        port(listen),
        port(&defaults.server.listen),
        "the default port"
    );
    let data = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("MCMP_DATA_DIR="))
        .expect("MCMP_DATA_DIR");
    assert_eq!(value("VOLUME"), vec![format!("[\"{data}\"]")]);
    let example = Config::from_toml_str(&read("deploy/mcmp.toml")).expect("deploy/mcmp.toml");
    assert_eq!(example.server.data_dir, PathBuf::from(data));
    assert_eq!(value("ENTRYPOINT"), vec![r#"["/usr/local/bin/mcmp"]"#]);
}

/// Every document of every manifest in `deploy/k8s/`, by kind.
fn manifests() -> Vec<Yaml> {
    let mut docs = Vec::new();
    for name in ["configmap.yaml", "service.yaml", "statefulset.yaml"] {
        let text = read(&format!("deploy/k8s/{name}"));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            docs.push(serde::Deserialize::deserialize(doc).expect("YAML"));
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_kubernetes_manifests_match_the_configuration() {
    let docs = manifests();
    let config_map = of_kind(&docs, "ConfigMap")[0];
    let toml = config_map["data"]["mcmp.toml"].as_str().expect("mcmp.toml");
    let config = Config::from_toml_str(toml).expect("the ConfigMap's mcmp.toml is valid");
    let listen_port = port(&config.server.listen);
    assert!(
        config.server.listen.starts_with("0.0.0.0:"),
        "every interface"
    );

    let set = of_kind(&docs, "StatefulSet")[0];
    let pod = &set["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let ports = container["ports"].as_sequence().expect("ports");
    assert_eq!(
        ports[0]["containerPort"].as_u64(),
        Some(u64::from(listen_port))
    );
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let mounts = container["volumeMounts"].as_sequence().expect("mounts");
    let data = mounts
        .iter()
        .find(|m| m["name"] == "data")
        .expect("data mount");
    assert_eq!(
        data["mountPath"].as_str().map(PathBuf::from),
        Some(config.server.data_dir.clone())
    );
    let claims = set["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .expect("PVC");
    assert_eq!(claims[0]["metadata"]["name"], "data", "a PVC per pod");
    let conf = mounts
        .iter()
        .find(|m| m["name"] == "config")
        .expect("config mount");
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let mount = conf["mountPath"].as_str().expect("path");
    assert_eq!(
        args,
        vec!["serve", "--config", &format!("{mount}/mcmp.toml")]
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        Duration::from_secs(grace) > config.server.shutdown_grace,
        "the kubelet waits longer ({grace} s) than the drain ({:?})",
        config.server.shutdown_grace
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    for service in of_kind(&docs, "Service") {
        let p = &service["spec"]["ports"][0];
        assert_eq!(p["port"].as_u64(), Some(u64::from(listen_port)));
        assert_eq!(p["targetPort"], "http");
        assert_eq!(
            service["spec"]["selector"],
            set["spec"]["selector"]["matchLabels"]
        );
    }
}
