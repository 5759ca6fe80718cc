//! Repository rules, checked on every CI run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Normal (non-dev) dependencies of a package, transitively, as package names.
fn normal_deps(package: &str) -> Vec<String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root())
        .args(["tree", "--offline", "--package", package, "--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_domain_crate_depends_on_no_adapter_or_io_library() {
    let deps = normal_deps("spotauth-domain");
    assert!(deps.len() > 1, "cargo tree printed nothing useful: {deps:?}");
    let forbidden = [
        "actix-web",
        "actix-http",
        "diesel",
        "diesel-async",
        "reqwest",
        "josekit",
        "chacha20poly1305",
        "mysql_async",
        "openidconnect",
        "tokio",
        "hyper",
        "serde",
        "serde_json",
        "openssl",
        "config",
    ];
    for dep in &deps {
        assert!(!forbidden.contains(&dep.as_str()), "spotauth-domain must not depend on {dep}");
        assert!(dep == "spotauth-domain" || !dep.starts_with("spotauth-"), "spotauth-domain must not depend on {dep}");
    }
}

#[test]
fn adapters_do_not_depend_on_each_other_or_on_http_servers() {
    for adapter in ["spotauth-crypto", "spotauth-mysql", "spotauth-spotify"] {
        let deps = normal_deps(adapter);
        for dep in &deps {
            assert!(
                dep == adapter || dep == "spotauth-domain" || !dep.starts_with("spotauth-"),
                "{adapter} must not depend on {dep}"
            );
            assert!(!dep.starts_with("actix"), "{adapter} must not know HTTP serving ({dep})");
        }
    }
}

#[test]
fn the_emulator_depends_on_no_spotauth_crate() {
    // It emulates Spotify, not our idea of it.
    for dep in normal_deps("spotauth-emulator") {
        assert!(
            dep == "spotauth-emulator" || !dep.starts_with("spotauth-"),
            "spotauth-emulator must not depend on {dep}"
        );
    }
}

#[test]
fn diesel_uses_the_pure_rust_mysql_driver() {
    let deps = normal_deps("spotauth-mysql");
    assert!(deps.iter().any(|d| d == "mysql_async"));
    assert!(!deps.iter().any(|d| d == "mysqlclient-sys"), "no C client");
}

#[test]
fn crate_folders_are_named_as_their_crates() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let folder = dir.file_name().unwrap().to_str().unwrap();
        assert!(manifest.contains(&format!("name = \"{folder}\"")), "crates/{folder} must hold the crate {folder}");
        assert!(manifest.contains("[lints]\nworkspace = true"), "crates/{folder} must inherit the workspace lints");
    }
}

#[test]
fn every_migration_column_is_commented_and_no_foreign_keys() {
    for entry in std::fs::read_dir(root().join("migrations/mysql")).unwrap() {
        let up = std::fs::read_to_string(entry.unwrap().path().join("up.sql")).unwrap();
        let code = sql_code_only(&up).to_uppercase();
        assert!(!code.contains("FOREIGN KEY"), "no FOREIGN KEY (PlanetScale)");
        assert!(!code.contains("REFERENCES"), "no REFERENCES (PlanetScale)");
        let mut in_table = false;
        for line in up.lines().map(str::trim) {
            if line.starts_with("CREATE TABLE") {
                in_table = true;
                continue;
            }
            if line.starts_with(')') {
                in_table = false;
            }
            let is_column = in_table
                && !line.is_empty()
                && !line.starts_with("COMMENT")
                && !line.starts_with("--")
                && !["PRIMARY", "UNIQUE", "KEY", "INDEX"].iter().any(|k| line.starts_with(k));
            if is_column {
                // The column's COMMENT is on the same line or the next one.
                let next = up.lines().map(str::trim).skip_while(|l| *l != line).nth(1).unwrap_or("");
                assert!(line.contains("COMMENT") || next.starts_with("COMMENT"), "column without a comment: {line}");
            }
        }
    }
}

/// The SQL without `--` comments and without quoted strings (where comments may say anything).
fn sql_code_only(sql: &str) -> String {
    let mut out = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("");
        let mut in_quote = false;
        for c in line.chars() {
            if c == '\'' {
                in_quote = !in_quote;
            } else if !in_quote {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_sql_filter_keeps_code_and_drops_comments() {
    let code =
        sql_code_only("-- FOREIGN KEY here\nuser_id CHAR(36) COMMENT 'REFERENCES x',\nCONSTRAINT f FOREIGN KEY (a)");
    assert!(!code.contains("REFERENCES"));
    assert_eq!(code.matches("FOREIGN KEY").count(), 1);
}
