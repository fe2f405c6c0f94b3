//! The data path runs one way: a module of `src/` may use only modules of lower layers.
//!
//! The layers are written once, in the table of `src/lib.rs`'s documentation
//! (`//! | layer | module | owns |`). This test reads that table, then every `crate::`,
//! `crate::{...}` and crate-escaping `super::` path in the code of `src/` (comments skipped),
//! and fails on any import of a module of the same layer or above, and on a top-level module
//! the table does not place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `module -> layer` from the table in `lib.rs`'s docs.
fn layers(lib: &str) -> BTreeMap<String, u32> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.trim().strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(layer), Some(module)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        let Ok(layer) = layer.parse::<u32>() else {
            continue;
        };
        let name = module.trim_start_matches("[`").trim_end_matches("`]");
        map.insert(name.to_string(), layer);
    }
    map
}

/// The module path of a file under `src/`: `src/scale/replay.rs` is `[scale, replay]`,
/// `src/scale/mod.rs` is `[scale]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The top-level modules named in `code` (comments already blanked), each with its byte
/// offset: `crate::x`, `crate::{x, y::z}` (across lines), and `super::` chains that climb to
/// the crate root from the module at `path`.
fn referenced(code: &str, path: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    // A path segment preceded by an identifier character, `$` (`$crate`) or `:` is part of
    // another path.
    let starts_a_path = |at: usize| {
        !code[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':')
    };
    for (at, _) in code.match_indices("crate::") {
        if !starts_a_path(at) {
            continue;
        }
        let after = &code[at + "crate::".len()..];
        match after.strip_prefix('{') {
            Some(group) => {
                let mut depth = 0;
                let mut items = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(String::new());
                            continue;
                        }
                        _ => {}
                    }
                    if let Some(item) = items.last_mut() {
                        item.push(c);
                    }
                }
                found.extend(items.iter().map(|item| (at, ident(item))));
            }
            None => found.push((at, ident(after))),
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !starts_a_path(at) {
            continue;
        }
        let mut after = &code[at..];
        let mut depth = path.len();
        while let Some(next) = after.strip_prefix("super::") {
            depth = depth.saturating_sub(1);
            after = next;
        }
        if depth == 0 {
            found.push((at, ident(after)));
        }
    }
    found.retain(|(_, m)| !m.is_empty() && m != "self" && m != "super");
    found
}

/// `text` with every comment line blanked (kept as an empty line, so offsets still give line
/// numbers): doc links and prose may name any module.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                line.split(" // ").next().unwrap_or(line)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every upward or sideways import in `files` (path relative to `src/`, text), given the
/// `layers`; and every top-level module the table does not place.
fn violations(layers: &BTreeMap<String, u32>, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (relative, text) in files {
        let path = module_path(relative);
        let Some(top) = path.first() else {
            continue; // lib.rs, main.rs
        };
        let Some(&own) = layers.get(top) else {
            problems.push(format!(
                "src/{}: module `{top}` is not in the layer table of src/lib.rs",
                relative.display()
            ));
            continue;
        };
        let code = code_only(text);
        let mut seen = Vec::new();
        for (at, module) in referenced(&code, &path) {
            let line = code[..at].matches('\n').count() + 1;
            if &module == top || seen.contains(&(line, module.clone())) {
                continue;
            }
            seen.push((line, module.clone()));
            match layers.get(&module) {
                Some(&layer) if layer < own => {}
                Some(&layer) => problems.push(format!(
                    "src/{}:{line}: `{top}` (layer {own}) uses `{module}` (layer {layer}); a module may use only lower layers",
                    relative.display()
                )),
                None => problems.push(format!(
                    "src/{}:{line}: `{top}` uses `{module}`, which the layer table does not place",
                    relative.display()
                )),
            }
        }
    }
    problems
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let relative = path.strip_prefix(root).expect("under src/").to_path_buf();
            if relative != Path::new("lib.rs") && relative != Path::new("main.rs") {
                out.push((relative, text));
            }
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let layers = layers(&lib);
    assert!(
        layers.len() >= 8 && layers.get("series") == Some(&0) && layers.get("cli") == Some(&8),
        "the layer table in src/lib.rs did not parse: {layers:?}"
    );
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    assert!(files.len() > 50, "only {} files under src/", files.len());
    let problems = violations(&layers, &files);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_check_catches_upward_sideways_and_unplaced_imports() {
    let layers = layers(
        "//! | 0 | [`series`] | x |\n//! | 1 | [`forecast`] | x |\n//! | 1 | [`source`] | x |\n//! | 2 | [`model`] | x |\n",
    );
    let files = vec![
        (
            PathBuf::from("series/mod.rs"),
            "use crate::model::Model;\n// use crate::model::Fine;\n".to_string(),
        ),
        (
            PathBuf::from("forecast/mod.rs"),
            "use crate::{\n    series::Millis,\n    source::{table, csv},\n};\n".to_string(),
        ),
        (
            PathBuf::from("model/arima/mod.rs"),
            "use super::super::forecast::Forecast;\nuse super::Fitted;\nlet x = crate::series::format_millis(0);\n"
                .to_string(),
        ),
        (PathBuf::from("serve/mod.rs"), "fn f() {}\n".to_string()),
    ];
    let problems = violations(&layers, &files);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("src/series/mod.rs:1: `series` (layer 0) uses `model` (layer 2)"));
    assert!(problems[1].contains("`forecast` (layer 1) uses `source` (layer 1)"));
    assert!(problems[2].contains("module `serve` is not in the layer table"));
}
