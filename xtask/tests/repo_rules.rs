//! Repository rules, checked on every CI run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Normal (non-dev) dependencies of a package, transitively, as package names.
fn normal_deps(package: &str) -> Vec<String> {
    tree(&["--package", package, "--edges", "normal"])
}

/// The package names `cargo tree` prints with these selection arguments.
fn tree(selection: &[&str]) -> Vec<String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root())
        .args(["tree", "--offline", "--prefix", "none", "--format", "{p}"])
        .args(selection)
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
    // The two stores share the SQL layer, and nothing else of ours but the domain.
    for (adapter, shared) in [
        ("spotauth-crypto", None),
        ("spotauth-mysql", Some("spotauth-sql")),
        ("spotauth-sqlite", Some("spotauth-sql")),
        ("spotauth-sql", None),
        ("spotauth-spotify", None),
        ("spotauth-runtime", None),
    ] {
        let deps = normal_deps(adapter);
        assert!(deps.len() > 1, "cargo tree printed nothing useful: {deps:?}");
        for dep in &deps {
            assert!(
                dep == adapter
                    || dep == "spotauth-domain"
                    || Some(dep.as_str()) == shared
                    || !dep.starts_with("spotauth-"),
                "{adapter} must not depend on {dep}"
            );
            assert!(!dep.starts_with("actix"), "{adapter} must not know HTTP serving ({dep})");
        }
    }
}

#[test]
fn the_runtime_knows_no_sql_http_or_spotify_wire_format() {
    // It decides when the domain's use cases run, on tokio; it never touches what they touch.
    for dep in normal_deps("spotauth-runtime") {
        for forbidden in ["diesel", "reqwest", "hyper", "actix", "serde_json", "mysql_async", "libsqlite3-sys", "url"] {
            assert!(!dep.starts_with(forbidden), "spotauth-runtime must not depend on {dep}");
        }
    }
}

#[test]
fn the_cache_knows_only_the_domain_ports() {
    let deps = normal_deps("spotauth-cache");
    assert!(deps.iter().any(|d| d == "spotauth-domain"), "cargo tree printed nothing useful: {deps:?}");
    for dep in deps {
        for forbidden in [
            "diesel",
            "reqwest",
            "hyper",
            "actix",
            "serde_json",
            "mysql_async",
            "libsqlite3-sys",
            "spotauth-sql",
            "spotauth-mysql",
            "spotauth-sqlite",
            "spotauth-spotify",
            "spotauth-app",
        ] {
            assert!(!dep.starts_with(forbidden), "spotauth-cache must not depend on {dep}");
        }
    }
}

#[test]
fn the_crypto_adapter_knows_no_http_sql_runtime_or_configuration() {
    for dep in normal_deps("spotauth-crypto") {
        for forbidden in ["diesel", "reqwest", "hyper", "actix", "tokio", "mysql_async", "config"] {
            assert!(
                dep != forbidden && !dep.starts_with(&format!("{forbidden}-")),
                "spotauth-crypto must not depend on {dep}"
            );
        }
    }
}

#[test]
fn the_testkit_is_never_a_normal_dependency() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let folder = entry.unwrap().file_name().into_string().unwrap();
        if folder == "spotauth-testkit" {
            continue;
        }
        let deps = normal_deps(&folder);
        assert!(
            !deps.iter().any(|d| d == "spotauth-testkit"),
            "{folder} must take spotauth-testkit as a dev-dependency only"
        );
    }
}

#[test]
fn the_bench_links_no_service_code() {
    // It measures the real binary over HTTP, like any client (the emulator plays Spotify).
    for dep in normal_deps("spotauth-bench") {
        assert!(
            ["spotauth-bench", "spotauth-emulator"].contains(&dep.as_str()) || !dep.starts_with("spotauth-"),
            "spotauth-bench must not depend on {dep}"
        );
    }
}

#[test]
fn handlers_never_read_a_clock() {
    // The time a response needs (expires_in, cookie Max-Age) comes with the use case's output.
    let dirs = ["crates/spotauth-app/src/routes", "crates/spotauth-app/src/web"];
    let mut checked = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let code = std::fs::read_to_string(&path).unwrap();
            for needle in [".now()", "SystemTime", "Instant::now", "Utc::now", "clock"] {
                assert!(!code.contains(needle), "{} reads a clock ({needle})", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "found only {checked} files under {dirs:?}");
}

#[test]
fn the_sql_layer_knows_the_domain_and_diesel_only() {
    // Direct dependencies: the domain, diesel and diesel-async (plus the bundled SQLite diesel
    // links, async-trait for the ports, and tokio to run each job on a task of its own). No
    // pool, no URL parsing, no driver setup of its own.
    let direct = tree(&["--package", "spotauth-sql", "--edges", "normal", "--depth", "1"]);
    let allowed =
        ["spotauth-sql", "spotauth-domain", "diesel", "diesel-async", "libsqlite3-sys", "async-trait", "tokio"];
    for dep in &direct {
        assert!(allowed.contains(&dep.as_str()), "spotauth-sql must not depend on {dep}");
    }
    for dep in normal_deps("spotauth-sql") {
        for pool in ["deadpool", "bb8", "mobc", "r2d2"] {
            assert!(!dep.starts_with(pool), "spotauth-sql must not know a connection pool ({dep})");
        }
    }
}

#[test]
fn the_testkit_knows_no_app_and_no_store() {
    // It tests the stores through their ports; the app and the stores depend on it, not back.
    for dep in normal_deps("spotauth-testkit") {
        assert!(
            ["spotauth-testkit", "spotauth-domain", "spotauth-crypto", "spotauth-sql", "spotauth-emulator"]
                .contains(&dep.as_str())
                || !dep.starts_with("spotauth-"),
            "spotauth-testkit must not depend on {dep}"
        );
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
    // diesel's `mysql` feature would link the C client: no crate of the workspace, for no
    // kind of dependency, may turn it on.
    let all = tree(&["--workspace", "--edges", "all"]);
    assert!(all.iter().any(|d| d == "diesel"), "cargo tree printed nothing useful");
    assert!(!all.iter().any(|d| d == "mysqlclient-sys"), "no C client");
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
    let mut checked = 0;
    for dialect in ["mysql", "sqlite"] {
        for entry in std::fs::read_dir(root().join("migrations").join(dialect)).unwrap() {
            let dir = entry.unwrap().path();
            for file in ["up.sql", "down.sql"] {
                let sql = std::fs::read_to_string(dir.join(file)).unwrap();
                let code = sql_code_only(&sql).to_uppercase();
                let at = format!("{}/{file}", dir.display());
                assert!(!code.contains("FOREIGN KEY"), "no FOREIGN KEY (PlanetScale; SQLite as MySQL): {at}");
                assert!(!code.contains("REFERENCES"), "no REFERENCES (PlanetScale; SQLite as MySQL): {at}");
                for column in column_definitions(&sql) {
                    let commented = match dialect {
                        // MySQL: a COMMENT clause on the column's line or the next one.
                        "mysql" => column.line.contains("COMMENT") || column.next.starts_with("COMMENT"),
                        // SQLite has no COMMENT clause: a `--` comment on the column's line.
                        _ => column.line.contains("--"),
                    };
                    assert!(commented, "column without a comment in {at}: {}", column.line);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "the rule saw only {checked} column definitions");
}

/// A column definition in a migration and the line after it.
struct ColumnLine<'a> {
    line: &'a str,
    next: &'a str,
}

/// Every column a migration defines: the lines of a `CREATE TABLE` body that are not keys, and
/// every `ADD COLUMN` / `MODIFY COLUMN` / `CHANGE COLUMN` of an `ALTER TABLE`.
fn column_definitions(sql: &str) -> Vec<ColumnLine<'_>> {
    let lines: Vec<&str> = sql.lines().map(str::trim).collect();
    let mut out = Vec::new();
    let mut in_table = false;
    for (i, line) in lines.iter().copied().enumerate() {
        if line.starts_with("CREATE TABLE") {
            in_table = true;
            continue;
        }
        if line.starts_with(')') {
            in_table = false;
        }
        let in_create = in_table
            && !line.is_empty()
            && !line.starts_with("COMMENT")
            && !line.starts_with("--")
            && !["PRIMARY", "UNIQUE", "KEY", "INDEX"].iter().any(|k| line.starts_with(k));
        let altered = ["ADD COLUMN", "MODIFY COLUMN", "CHANGE COLUMN"].iter().any(|k| line.starts_with(k));
        if in_create || altered {
            out.push(ColumnLine { line, next: lines.get(i + 1).copied().unwrap_or("") });
        }
    }
    out
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

/// A browser file's code with `//` line comments and `/* */` block comments dropped (good
/// enough for our own files, whose strings hold no comment markers the rules look for).
fn js_code_only(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| match l.find("// ").or_else(|| l.trim_start().starts_with("//").then_some(0)) {
            Some(i) if !l[..i].ends_with(':') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn room_uses_only_the_client_module_and_no_inline_code() {
    let web = root().join("crates/spotauth-app/web/room");
    let js = js_code_only(&std::fs::read_to_string(web.join("room.js")).unwrap());
    assert!(js.contains("from '../client/spotauth.js'"), "room.js imports the client module");
    for needle in ["'/api/", "\"/api/", "`/api/", "${api}/api", "XMLHttpRequest", "EventSource", "WebSocket"] {
        assert!(!js.contains(needle), "room.js calls the service itself ({needle}); go through the client module");
    }
    // Its one fetch is Spotify's Web API (starting playback on its own player).
    let fetches: Vec<&str> = js.match_indices("fetch(").map(|(i, _)| &js[i..(i + 40).min(js.len())]).collect();
    assert!(fetches.iter().all(|f| f.starts_with("fetch(`${spotifyApiUrl}")), "{fetches:?}");
    let html = std::fs::read_to_string(web.join("index.html")).unwrap();
    let lower = html.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script in index.html: {tag}");
    }
    for needle in ["<style", " style=", " onclick=", " onload=", "javascript:"] {
        assert!(!lower.contains(needle), "inline code or style in index.html ({needle}); its CSP forbids them");
    }
}

#[test]
fn browser_client_keeps_tokens_in_memory_only() {
    let client = root().join("crates/spotauth-app/web/client/spotauth.js");
    let code = js_code_only(&std::fs::read_to_string(client).unwrap());
    assert!(code.contains("export function createClient"), "the rule reads the real client");
    for needle in ["localStorage", "sessionStorage", "document.cookie", "indexedDB", "console."] {
        assert!(!code.contains(needle), "spotauth.js uses {needle}: tokens stay in memory and out of logs");
    }
}

#[test]
fn the_js_comment_filter_keeps_code_and_drops_comments() {
    let code = js_code_only("a(); // localStorage\n/* sessionStorage */ b('http://x');\n// whole line");
    assert_eq!(code, "a(); \n b('http://x');\n");
}

#[test]
fn the_library_knows_no_http_server() {
    let deps = normal_deps("spotauth");
    assert!(deps.iter().any(|d| d == "spotauth-domain"), "cargo tree printed nothing useful: {deps:?}");
    for forbidden in ["actix-web", "actix-http", "actix-cors", "spotauth-app", "spotauth-testkit", "spotauth-emulator"]
    {
        assert!(!deps.iter().any(|d| d == forbidden), "the library crate must not depend on {forbidden}");
    }
}
