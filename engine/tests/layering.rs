//! The layering and size rules of CORE.md §8, checked on the source text
//! (in the manner of TigerBeetle's `tidy.zig`):
//!
//! - code in `engine/src/core/` does no IO and never reads the clock: it
//!   names neither the driver, the runtime, the mesh, the WAL nor HTTP;
//! - an engine module imports only from its own layer or below
//!   ([`LAYERS`]); the imports that still point up are listed in
//!   [`UPWARD_IMPORTS`], a list that may only shrink;
//! - only `engine::rt` names glommio;
//! - outside tests, a function has at most [`MAX_FN_LINES`] lines and a
//!   file at most [`MAX_FILE_LINES`], in `engine/src` and `api/src`; today's
//!   exceptions are listed with their sizes, and may only shrink.
//!
//! A listed exception that is no longer needed fails too, so the lists are
//! kept exact: remove the line and the ratchet has moved.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Longest function, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 70;

/// Longest source file, in lines before its `#[cfg(test)] mod tests`.
const MAX_FILE_LINES: usize = 600;

/// What code in `core/` must not name.
const CORE_BANNED: &[&str] = &[
    "crate::shard",
    "crate::rt",
    "crate::mesh",
    "crate::wal",
    "crate::http_client",
    "crate::io",
    "crate::pipeline",
    "crate::lifecycle",
    "crate::report",
    "crate::sender",
    "unix_ms",
    "SystemTime",
    "Instant::now",
    "glommio",
    "hyper",
    "tokio",
    "std::fs",
    "std::net",
    "mcmp_storage",
];

/// Engine modules by layer; a module may import from its layer and below.
const LAYERS: &[(&str, u8)] = &[
    // vocabulary and pure rules
    ("model", 0),
    ("codes", 0),
    ("code_tables", 0),
    ("time", 0),
    ("codec", 0),
    ("secrets", 0),
    ("catalog", 0),
    ("policy", 0),
    ("timer", 0),
    ("routing", 0),
    ("config", 0),
    // the sans-IO owners
    ("core", 1),
    // IO and transport
    ("mesh", 2),
    ("io", 2),
    ("history", 2),
    ("http_client", 2),
    ("redis", 2),
    ("wal", 2),
    ("rt", 2),
    ("notify", 2),
    ("metrics", 2),
    ("alerts", 2),
    ("sender", 2),
    ("outbox", 2),
    // the driver and what still lives beside it (moving to core/ and shard/)
    ("shard", 3),
    ("accept", 3),
    ("report", 3),
    ("query", 3),
    ("stats", 3),
    ("digest", 3),
    ("files", 3),
    ("deadlines", 3),
    ("agents", 3),
    // the deterministic simulator (tests only): a driver of the core
    ("sim", 3),
    // the facade
    ("lib", 4),
];

/// (module, module above it that it still imports): today's exceptions.
const UPWARD_IMPORTS: &[(&str, &str)] = &[
    ("catalog", "sender"),
    ("code_tables", "sender"),
    ("mesh", "agents"),
    ("mesh", "query"),
    ("mesh", "report"),
    ("mesh", "stats"),
    ("sender", "shard"),
];

/// (file, function, its length today) for functions over [`MAX_FN_LINES`].
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[];

/// (file, its length today) for files over [`MAX_FILE_LINES`].
const LONG_FILES: &[(&str, usize)] = &[
    // +1: the origin code's optional parameter in `build_pdus` (SPEC §5.11).
    ("engine/src/sender/smpp/session.rs", 661),
];

#[test]
fn core_does_no_io_and_reads_no_clock() {
    let mut found = Vec::new();
    for file in sources("engine/src/core") {
        let text = read(&file);
        for (n, line) in code_lines(&text) {
            for banned in CORE_BANNED.iter().filter(|b| line.contains(*b)) {
                found.push(format!(
                    "{}:{n}: `{banned}` in `{}`",
                    rel(&file),
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "core/ must stay sans-IO:\n{}",
        found.join("\n")
    );
}

#[test]
fn engine_modules_import_only_from_their_layer_or_below() {
    let mut upward = BTreeSet::new();
    for file in sources("engine/src") {
        let module = module_of(&file);
        let Some(own) = layer(&module) else {
            panic!("{}: module `{module}` has no layer in LAYERS", rel(&file));
        };
        let text = read(&file);
        for (_, line) in code_lines(&text) {
            for used in crate_paths(line) {
                if layer(&used).is_some_and(|l| l > own) {
                    upward.insert((module.clone(), used));
                }
            }
        }
    }
    let allowed: BTreeSet<(String, String)> = UPWARD_IMPORTS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&allowed).collect();
    assert!(new.is_empty(), "imports pointing up a layer: {new:?}");
    let gone: Vec<_> = allowed.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "no longer needed, remove from UPWARD_IMPORTS: {gone:?}"
    );
}

/// In `api`, `server → router → endpoints → {context, http}`: what lies
/// below never names what lies above.
#[test]
fn api_endpoints_never_name_the_router_or_the_server() {
    let mut found = Vec::new();
    let below = ["api/src/endpoints", "api/src/http"]
        .into_iter()
        .flat_map(sources)
        .chain([root().join("api/src/context.rs")]);
    for file in below {
        let text = read(&file);
        for (n, line) in code_lines(&text) {
            let grouped =
                line.contains("crate::{") && (line.contains("router") || line.contains("server"));
            let named = crate_paths(line)
                .iter()
                .any(|p| p == "router" || p == "server");
            if grouped || named {
                found.push(format!("{}:{n}: {}", rel(&file), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "api imports upward: {found:?}");
}

#[test]
fn only_rt_names_glommio() {
    let mut found = Vec::new();
    for file in sources("engine/src") {
        if module_of(&file) == "rt" {
            continue;
        }
        let text = read(&file);
        for (n, line) in code_lines(&text) {
            if line.contains("glommio") {
                found.push(format!("{}:{n}", rel(&file)));
            }
        }
    }
    assert!(found.is_empty(), "glommio outside rt: {found:?}");
}

#[test]
fn functions_and_files_stay_small() {
    let mut problems = Vec::new();
    let mut long_fns = BTreeSet::new();
    let mut long_files = BTreeSet::new();
    for dir in ["engine/src", "api/src"] {
        for file in sources(dir) {
            let name = rel(&file);
            let text = without_tests(&read(&file));
            let lines = text.lines().count();
            if lines > MAX_FILE_LINES {
                long_files.insert(name.clone());
                match LONG_FILES.iter().find(|(f, _)| *f == name) {
                    Some((_, max)) if lines <= *max => {}
                    Some((_, max)) => problems.push(format!("{name}: {lines} lines, was {max}")),
                    None => problems.push(format!("{name}: {lines} lines > {MAX_FILE_LINES}")),
                }
            }
            for (function, len) in function_lengths(&text) {
                if len <= MAX_FN_LINES {
                    continue;
                }
                long_fns.insert((name.clone(), function.clone()));
                match LONG_FUNCTIONS
                    .iter()
                    .find(|(f, n, _)| *f == name && *n == function)
                {
                    Some((_, _, max)) if len <= *max => {}
                    Some((_, _, max)) => {
                        problems.push(format!("{name}: fn {function} {len} lines, was {max}"))
                    }
                    None => problems.push(format!(
                        "{name}: fn {function} {len} lines > {MAX_FN_LINES}"
                    )),
                }
            }
        }
    }
    for (file, function, _) in LONG_FUNCTIONS {
        if !long_fns.contains(&(file.to_string(), function.to_string())) {
            problems.push(format!(
                "{file}: fn {function} is short now: remove it from LONG_FUNCTIONS"
            ));
        }
    }
    for (file, _) in LONG_FILES {
        if !long_files.contains(*file) {
            problems.push(format!("{file} is short now: remove it from LONG_FILES"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_see_what_they_must() {
    let text = "fn short() -> u8 { 1 }\n\
                pub(crate) async fn long(\n    a: u8,\n) {\n    if a > 0 {\n        x();\n    }\n}\n\
                impl A {\n    pub fn m(&self) {\n        y();\n    }\n    fn decl(&self);\n}\n\
                #[cfg(test)]\nmod tests {\n    fn in_tests() {\n    }\n}\n";
    let text = without_tests(text);
    assert!(!text.contains("in_tests"));
    assert_eq!(
        function_lengths(&text),
        vec![("short".into(), 1), ("long".into(), 7), ("m".into(), 3)]
    );
    assert_eq!(
        crate_paths("use crate::shard::{Shard}; let t = crate::unix_ms(); mcmp_crate::x"),
        vec!["shard".to_string(), "unix_ms".to_string()]
    );
    let lines: Vec<usize> = code_lines("// crate::shard\nlet x = 1; // note\n/// doc\n")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(lines, vec![2]);
    assert_eq!(module_of(Path::new("/x/engine/src/core/held.rs")), "core");
    assert_eq!(module_of(Path::new("/x/engine/src/lib.rs")), "lib");
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every non-test `.rs` file under `dir` (relative to the workspace root):
/// `tests.rs`, `*_tests.rs` and `test_support.rs` are tests.
fn sources(dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".rs")
                && name != "tests.rs"
                && !name.ends_with("_tests.rs")
                && name != "test_support.rs"
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read source")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The top-level engine module a file belongs to (`lib` for lib.rs).
fn module_of(path: &Path) -> String {
    let text = path.to_string_lossy();
    let after = text.split("engine/src/").nth(1).unwrap_or("");
    let first = after.split('/').next().unwrap_or("");
    first.trim_end_matches(".rs").to_string()
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The text before a trailing `#[cfg(test)] mod tests`.
fn without_tests(text: &str) -> String {
    match text.find("\n#[cfg(test)]\nmod tests") {
        Some(i) => text[..=i].to_string(),
        None => text.to_string(),
    }
}

/// (line number, code) of every line that is not only a comment, outside
/// the tests.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let end = text.find("\n#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end].lines().enumerate().filter_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// The first segment of every `crate::` path on a line.
fn crate_paths(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .filter(|(i, _)| !line[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, m)| {
            line[i + m.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// (name, lines from `fn` to its closing brace) of every function with a body.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let indent = &line[..line.len() - line.trim_start().len()];
        let trimmed = line.trim_end();
        if trimmed.ends_with(';') {
            continue;
        }
        if trimmed.ends_with('}') && trimmed.contains('{') {
            out.push((name, 1));
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(j) = (i + 1..lines.len()).find(|&j| lines[j] == close) {
            out.push((name, j - i + 1));
        }
    }
    out
}

/// The name of the function declared on `line`, if any.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}
