//! The fixture's modules point one way, as in axum's examples: `main` → `lib` (the routers and
//! `spawn`) → `server` → handlers → middleware → shared state → leaves → helpers. This test
//! reads the sources and fails when a module names (`crate::name`) a module of its own layer or
//! of a layer above, or when a module has no layer.

#![allow(clippy::expect_used)]

use std::fs;
use std::path::Path;

/// The layers, lowest first, with their modules (`src/<name>.rs`).
const LAYERS: &[(&str, &[&str])] = &[
    ("helpers", &["checksum", "error", "random", "s3", "sync"]),
    ("body reading", &["body"]),
    ("leaves", &["config", "link", "params", "store", "tls"]),
    ("shared state", &["state"]),
    ("the S3 signing role's routes", &["s3_routes"]),
    ("middleware", &["cors", "faults", "limits"]),
    ("handlers", &["control", "statics", "upload"]),
    ("server", &["server"]),
    ("lib", &["lib"]),
];

/// The binary: it uses the library by its crate name and is above every layer.
const TOP: &str = "main";

fn level_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The module names a line of code refers to as `crate::name` or `crate::{a, b::c}`.
fn crate_references(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            names.extend(group[..end].split(',').map(ident));
        } else {
            names.push(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Every import in `root/src` that goes sideways or up, and every module without a layer.
fn wrong_way_references(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut files: Vec<_> = fs::read_dir(root.join("src"))
        .expect("source directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for file in files {
        let module = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_owned();
        if module == TOP {
            continue;
        }
        let Some(level) = level_of(&module) else {
            found.push(format!(
                "{}: module {module} has no layer in tests/layers.rs",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(&file).expect("source file");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in crate_references(line) {
                let ok = match level_of(&name) {
                    Some(l) => l < level || name == module,
                    // Not a module (a re-exported item such as `crate::Error`): only the top
                    // may use what lib.rs re-exports.
                    None => false,
                };
                if !ok {
                    let (layer, _) = LAYERS[level];
                    found.push(format!(
                        "{}:{}: {module} ({layer}) names crate::{name}, which is not below it: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_names_one_beside_or_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = wrong_way_references(root);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The check itself can fail: an upward import, a sideways one inside a group, an item taken
/// from lib.rs, and a module with no layer are each found; a downward import and a comment
/// are not.
#[test]
fn a_wrong_way_reference_is_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    fs::create_dir_all(&src).expect("src");
    let write = |name: &str, text: &str| fs::write(src.join(name), text).expect("write");
    write(
        "link.rs",
        "use crate::state::lock;\nuse crate::sync::lock;\n",
    );
    write("store.rs", "use crate::{sync::lock, params::Rejection};\n");
    write("tls.rs", "use crate::Error;\n");
    write(
        "cors.rs",
        "// see crate::upload::chunk\nuse crate::state::AppState;\n",
    );
    write("extra.rs", "pub fn f() {}\n");
    write("main.rs", "use server_fixture::spawn;\n");
    let found = wrong_way_references(dir.path());
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("module extra has no layer"), "{found:#?}");
    assert!(
        found[1].contains("link (leaves) names crate::state"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("store (leaves) names crate::params"),
        "{found:#?}"
    );
    assert!(
        found[3].contains("tls (leaves) names crate::Error"),
        "{found:#?}"
    );
}
