//! Workspace tidiness that no compiler checks: the one-way crate graph of `crates/ARCHITECTURE.md`
//! (every dependency edge on an allow-list, and every edge pointing up the code map's order), a `//!`
//! header on every Rust file, every module named in its crate root's doc, and the licences of
//! every dependency on a permissive allow-list.
//!
//! Advisories (RustSec) are not checked here: their database is fetched from the network, which tests
//! do not have; `cargo deny check advisories` is the tool for a machine that does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Duet crates each crate may depend on (normal and build dependencies), by package name
/// without the `duet-` prefix. A new edge is a design decision: add it here and to the code map.
const ALLOWED_EDGES: &[(&str, &[&str])] = &[
    ("metrics", &[]),
    ("types", &[]),
    ("proto", &["types"]),
    ("parser", &["types"]),
    ("catalog", &[]),
    ("storage", &["metrics", "proto"]),
    ("tsfile", &["types"]),
    ("engine", &["proto", "parser", "catalog", "storage"]),
    (
        "runtime",
        &[
            "metrics", "proto", "parser", "catalog", "storage", "engine", "tsfile",
        ],
    ),
    (
        "server",
        &[
            "metrics", "proto", "parser", "catalog", "storage", "engine", "runtime",
        ],
    ),
    ("cli", &["proto", "parser"]),
    ("testkit", &["proto"]),
    ("soak", &["proto", "testkit"]),
];

/// Licences (SPDX identifiers) a dependency may be used under: permissive ones that ask only for
/// attribution. An expression passes when some choice of its `OR` branches uses only these.
const ALLOWED_LICENSES: &[&str] = &[
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "BSL-1.0",
    "Unlicense",
    "CC0-1.0",
    "0BSD",
    "Unicode-3.0",
    "Unicode-DFS-2016",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo_metadata(no_deps: bool) -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1", "--locked"]);
    if no_deps {
        command.arg("--no-deps");
    } else {
        command.args(["--filter-platform", "x86_64-unknown-linux-gnu"]);
    }
    let output = command.output().expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// The crate names of the code map's table in `crates/ARCHITECTURE.md`, in its order.
fn code_map_order() -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("crates/ARCHITECTURE.md")).unwrap();
    let section = text
        .split("## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a code map");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| crate |"))
        .skip(2)
        .take_while(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('`').nth(1).map(str::to_string))
        .collect()
}

#[test]
fn crate_dependencies_follow_the_one_way_graph() {
    let metadata = cargo_metadata(true);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_EDGES.iter().copied().collect();
    let order = code_map_order();
    let position = |name: &str| order.iter().position(|n| n == name);
    let mut problems = Vec::new();
    let mut members = BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(short) = name.strip_prefix("duet-") else {
            problems.push(format!("workspace package {name} is not named duet-*"));
            continue;
        };
        members.insert(short.to_string());
        let Some(allowed_here) = allowed.get(short) else {
            problems.push(format!("{name} is not in tidy.rs's ALLOWED_EDGES"));
            continue;
        };
        let Some(own_position) = position(short) else {
            problems.push(format!("{name} is missing from ARCHITECTURE.md's code map"));
            continue;
        };
        for dependency in package["dependencies"].as_array().unwrap() {
            let Some(target) = dependency["name"].as_str().unwrap().strip_prefix("duet-") else {
                continue;
            };
            let dev = dependency["kind"].as_str() == Some("dev");
            if dev {
                // Tests may use the test kit, their own crate (for a test feature), and anything
                // their crate may use.
                if target != "testkit" && target != short && !allowed_here.contains(&target) {
                    let above = position(target).is_some_and(|p| p < own_position);
                    if !above {
                        problems.push(format!(
                            "{name} has a dev-dependency on duet-{target}, below it in the code map"
                        ));
                    }
                }
                continue;
            }
            if !allowed_here.contains(&target) {
                problems.push(format!(
                    "{name} depends on duet-{target}: not an allowed edge (tidy.rs's ALLOWED_EDGES)"
                ));
            }
        }
        for target in *allowed_here {
            if position(target).is_none_or(|p| p >= own_position) {
                problems.push(format!(
                    "allowed edge {short} -> {target} does not point up the code map's order"
                ));
            }
        }
    }
    for name in allowed.keys() {
        if !members.contains(*name) {
            problems.push(format!("ALLOWED_EDGES names {name}, not a workspace crate"));
        }
    }
    for name in &order {
        if !members.contains(name) {
            problems.push(format!("the code map names {name}, not a workspace crate"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every tracked-looking Rust file of the project (not `target`, not generated code).
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(
                    name.as_ref(),
                    "target" | "generated" | "fixtures" | "corpus"
                ) && !name.starts_with('.')
                {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "fuzz", "scripts"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

#[test]
fn every_rust_file_starts_with_a_module_header() {
    let files = rust_files();
    assert!(files.len() > 100, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line saying why they exist:\n{}",
        missing.join("\n")
    );
}

/// The modules a crate root declares (`mod name;`, `pub mod name;`), not inline ones.
fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| {
            let line = line
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.to_string())
        })
        .collect()
}

#[test]
fn every_crate_root_names_its_modules_in_its_doc() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let src = entry.path().join("src");
        let crate_root = [src.join("lib.rs"), src.join("main.rs")]
            .into_iter()
            .find(|p| p.exists());
        let Some(crate_root) = crate_root else {
            continue;
        };
        let text = std::fs::read_to_string(&crate_root).unwrap();
        let doc: String = text
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        checked += 1;
        for module in declared_modules(&text) {
            if !doc.contains(&format!("`{module}`")) {
                problems.push(format!(
                    "{}: module `{module}` is not named in the crate doc's module list",
                    crate_root.display()
                ));
            }
        }
    }
    assert!(checked >= 10, "checked only {checked} crate roots");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether an SPDX expression can be satisfied with [`ALLOWED_LICENSES`] (`A OR B`, `A AND B`,
/// parentheses, `WITH` exceptions, and the old `A/B` form).
fn license_allowed(expression: &str) -> bool {
    let spaced = expression
        .replace('/', " OR ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let allowed = parse_or(&tokens, &mut at);
    allowed && at == tokens.len()
}

fn parse_or(tokens: &[&str], at: &mut usize) -> bool {
    let mut any = parse_and(tokens, at);
    while tokens.get(*at) == Some(&"OR") {
        *at += 1;
        any |= parse_and(tokens, at);
    }
    any
}

fn parse_and(tokens: &[&str], at: &mut usize) -> bool {
    let mut all = parse_term(tokens, at);
    while tokens.get(*at) == Some(&"AND") {
        *at += 1;
        all &= parse_term(tokens, at);
    }
    all
}

fn parse_term(tokens: &[&str], at: &mut usize) -> bool {
    match tokens.get(*at) {
        Some(&"(") => {
            *at += 1;
            let inner = parse_or(tokens, at);
            if tokens.get(*at) == Some(&")") {
                *at += 1;
                inner
            } else {
                false
            }
        }
        Some(id) => {
            *at += 1;
            let mut license = id.to_string();
            if tokens.get(*at) == Some(&"WITH") {
                license = format!("{license} WITH {}", tokens.get(*at + 1).unwrap_or(&""));
                *at += 2;
            }
            ALLOWED_LICENSES.contains(&license.as_str())
        }
        None => false,
    }
}

#[test]
fn license_expressions_are_read_as_spdx() {
    assert!(license_allowed("MIT OR Apache-2.0"));
    assert!(license_allowed("MIT/Apache-2.0"));
    assert!(license_allowed("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(license_allowed("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(!license_allowed("GPL-3.0-only"));
    assert!(!license_allowed("MIT AND GPL-3.0-only"));
    assert!(!license_allowed("(MIT"));
}

#[test]
fn every_dependency_has_a_permissive_licence() {
    let metadata = cargo_metadata(false);
    let packages = metadata["packages"].as_array().unwrap();
    assert!(packages.len() > 100, "only {} packages", packages.len());
    let refused: Vec<String> = packages
        .iter()
        .filter(|p| !p["name"].as_str().unwrap_or("").starts_with("duet-"))
        .filter_map(|p| {
            let license = p["license"].as_str().unwrap_or("");
            (!license_allowed(license)).then(|| {
                format!(
                    "{} {}: {:?}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?"),
                    license
                )
            })
        })
        .collect();
    assert!(
        refused.is_empty(),
        "dependencies whose licence is not on tidy.rs's ALLOWED_LICENSES:\n{}",
        refused.join("\n")
    );
}
