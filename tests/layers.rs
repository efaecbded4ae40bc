//! The crate's layers point one way: `api` (JS surface) → `driver` (the loop) → `transport`
//! (browser I/O) → `engine` (decisions). This test reads the sources and fails when a module
//! names a layer above its own, or when the engine names a web crate.

#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first, with the source paths that belong to each.
const LAYERS: &[(&str, &str)] = &[
    ("engine", "src/engine"),
    ("transport", "src/transport"),
    ("driver", "src/driver.rs"),
    ("api", "src/api"),
];

/// The Rust files under `path` (a file or a directory).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).expect("source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every `(file, line number, line)` in `layer` that names `crate::<above>` for a layer above it.
fn upward_references(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (level, (layer, path)) in LAYERS.iter().enumerate() {
        for file in rust_files(&root.join(path)) {
            let text = fs::read_to_string(&file).expect("source file");
            for (n, line) in text.lines().enumerate() {
                for (above, _) in &LAYERS[level + 1..] {
                    if line.contains(&format!("crate::{above}")) {
                        found.push(format!(
                            "{}:{}: the {layer} layer names crate::{above}: {}",
                            file.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
                if *layer == "engine"
                    && ["wasm_bindgen", "web_sys", "js_sys", "gloo_timers"]
                        .iter()
                        .any(|web| line.contains(web))
                {
                    found.push(format!(
                        "{}:{}: the engine names a web crate: {}",
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
fn no_module_names_a_layer_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = upward_references(root);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The check itself can fail: a lower layer that names a higher one is found.
#[test]
fn an_upward_reference_is_found() {
    let dir = std::env::temp_dir().join(format!("layers-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("src/engine")).expect("temp dir");
    fs::create_dir_all(dir.join("src/transport")).expect("temp dir");
    fs::create_dir_all(dir.join("src/api")).expect("temp dir");
    fs::write(dir.join("src/driver.rs"), "use crate::transport::Via;\n").expect("write");
    fs::write(dir.join("src/api/mod.rs"), "use crate::driver::Driver;\n").expect("write");
    fs::write(
        dir.join("src/engine/mod.rs"),
        "use wasm_bindgen::JsValue;\n",
    )
    .expect("write");
    fs::write(
        dir.join("src/transport/fetch.rs"),
        "let ms = crate::driver::timer_ms(5);\n",
    )
    .expect("write");
    let found = upward_references(&dir);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("the engine names a web crate"),
        "{found:?}"
    );
    assert!(
        found[1].contains("transport layer names crate::driver"),
        "{found:?}"
    );
}
