//! `DATABASE_URL` parsing, with the TLS modes PlanetScale and MySQL clients use.
//!
//! Accepted: `mysql://user:pass@host:port/db?ssl-mode=MODE` where MODE is one of
//! `DISABLED`, `PREFERRED` (treated as DISABLED: no silent downgrade games), `REQUIRED` (TLS,
//! certificate not verified), `VERIFY_CA` (TLS, certificate chain verified, host name not) or
//! `VERIFY_IDENTITY` (TLS, chain and host name verified: the right mode for PlanetScale).
//! Aliases: `sslmode=`, `sslaccept=strict` (= VERIFY_IDENTITY) and
//! `sslaccept=accept_invalid_certs` (= REQUIRED). `ssl-ca=/path/ca.pem` (alias `sslrootcert`,
//! `sslcert`) adds a CA certificate. mysql_async's own `require_ssl`/`verify_ca`/
//! `verify_identity` parameters also pass through.

use std::fmt;
use std::path::PathBuf;

use mysql_async::{Opts, OptsBuilder, SslOpts};

/// Why `DATABASE_URL` was refused. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DATABASE_URL: {0}")]
pub struct DatabaseUrlError(String);

/// TLS requirement for the database connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS without certificate checks.
    Required,
    /// TLS, CA chain checked.
    VerifyCa,
    /// TLS, CA chain and host name checked.
    VerifyIdentity,
}

/// A parsed, validated database URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    opts: Opts,
    tls: TlsMode,
    redacted: String,
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrl").field("url", &self.redacted).field("tls", &self.tls).finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl DatabaseUrl {
    /// Parses and validates. The error names the problem, never the password.
    pub fn parse(raw: &str) -> Result<Self, DatabaseUrlError> {
        let mut url = url::Url::parse(raw.trim()).map_err(|e| DatabaseUrlError(format!("not a URL ({e})")))?;
        if url.scheme() != "mysql" {
            return Err(DatabaseUrlError(format!("scheme must be mysql://, not {}://", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(DatabaseUrlError("no host".into()));
        }
        let db = url.path().trim_start_matches('/');
        if db.is_empty() || db.contains('/') {
            return Err(DatabaseUrlError("no database name in the path (mysql://host/DBNAME)".into()));
        }
        let mut tls = TlsMode::Disabled;
        let mut ca: Option<PathBuf> = None;
        let mut passthrough: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            let (k, v) = (k.to_string(), v.to_string());
            match k.as_str() {
                "ssl-mode" | "sslmode" | "ssl_mode" => {
                    tls = match v.to_ascii_uppercase().replace('-', "_").as_str() {
                        "DISABLED" | "DISABLE" | "PREFERRED" | "PREFER" => TlsMode::Disabled,
                        "REQUIRED" | "REQUIRE" => TlsMode::Required,
                        "VERIFY_CA" => TlsMode::VerifyCa,
                        "VERIFY_IDENTITY" | "VERIFY_FULL" => TlsMode::VerifyIdentity,
                        _ => return Err(DatabaseUrlError(format!("unknown {k} value `{v}`"))),
                    }
                }
                "sslaccept" => {
                    tls = match v.as_str() {
                        "strict" => TlsMode::VerifyIdentity,
                        "accept_invalid_certs" => TlsMode::Required,
                        _ => return Err(DatabaseUrlError(format!("unknown sslaccept value `{v}`"))),
                    }
                }
                "ssl-ca" | "sslca" | "sslrootcert" | "sslcert" => ca = Some(PathBuf::from(v)),
                _ => passthrough.push((k, v)),
            }
        }
        let redacted = {
            let mut r = url.clone();
            if r.password().is_some() {
                let _ = r.set_password(Some("***"));
            }
            r.set_query(None);
            r.to_string()
        };
        url.set_query(None);
        if !passthrough.is_empty() {
            url.query_pairs_mut().extend_pairs(passthrough.iter());
        }
        let opts = Opts::from_url(url.as_str()).map_err(|e| DatabaseUrlError(describe_url_error(&e)))?;
        let opts = match tls {
            TlsMode::Disabled if opts.ssl_opts().is_some() => {
                tls = TlsMode::Required;
                opts
            }
            TlsMode::Disabled => opts,
            mode => {
                let mut ssl = SslOpts::default()
                    .with_danger_accept_invalid_certs(mode == TlsMode::Required)
                    .with_danger_skip_domain_validation(mode != TlsMode::VerifyIdentity);
                if let Some(ca) = ca {
                    if !ca.is_file() {
                        return Err(DatabaseUrlError(format!("ssl-ca file {} does not exist", ca.display())));
                    }
                    ssl = ssl.with_root_certs(vec![ca.into()]);
                }
                OptsBuilder::from_opts(opts).ssl_opts(Some(ssl)).into()
            }
        };
        Ok(DatabaseUrl { opts, tls, redacted })
    }

    /// The connection options.
    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    /// The TLS mode in force.
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// The database name.
    pub fn database(&self) -> Option<&str> {
        self.opts.db_name()
    }
}

fn describe_url_error(e: &mysql_async::UrlError) -> String {
    use mysql_async::UrlError as E;
    match e {
        E::UnknownParameter { param } => format!("unknown parameter `{param}`"),
        E::InvalidParamValue { param, .. } => format!("invalid value for parameter `{param}`"),
        E::UnsupportedScheme { scheme } => format!("unsupported scheme `{scheme}`"),
        _ => "invalid URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_modes() {
        let m = |u: &str| DatabaseUrl::parse(u).map(|d| d.tls());
        assert_eq!(m("mysql://root@127.0.0.1:3306/test"), Ok(TlsMode::Disabled));
        assert_eq!(m("mysql://u:p@h/db?ssl-mode=REQUIRED"), Ok(TlsMode::Required));
        assert_eq!(m("mysql://u:p@h/db?sslaccept=strict"), Ok(TlsMode::VerifyIdentity));
        assert_eq!(m("mysql://u:p@h/db?ssl-mode=verify_ca"), Ok(TlsMode::VerifyCa));
        assert_eq!(m("mysql://u:p@h/db?require_ssl=true"), Ok(TlsMode::Required));
        assert!(DatabaseUrl::parse("mysql://u:p@h/db?ssl-mode=REQUIRED").unwrap().opts().ssl_opts().is_some());
    }

    #[test]
    fn errors_name_the_setting_and_hide_the_password() {
        for bad in [
            "not a url",
            "postgres://u:hunter2@h/db",
            "mysql://u:hunter2@h/",
            "mysql://u:hunter2@h/db?ssl-mode=SOMETIMES",
            "mysql://u:hunter2@h/db?bogus=1",
            "mysql://u:hunter2@h/db?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("DATABASE_URL: "), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let ok = DatabaseUrl::parse("mysql://u:hunter2@h/db").unwrap();
        assert!(!format!("{ok} {ok:?}").contains("hunter2"));
    }

    /// Property tests (`PROPTEST_CASES=N` for a long run): any `DATABASE_URL` gives a typed
    /// answer, never a panic, and the password appears in no error, `Display` or `Debug`.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn params() -> impl Strategy<Value = String> {
            let one = prop_oneof![
                "(ssl-mode|sslmode|ssl_mode)=(DISABLED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY|bogus|)",
                "sslaccept=(strict|accept_invalid_certs|x)",
                "(ssl-ca|sslrootcert)=/nonexistent/[a-z]{1,8}.pem",
                "(pool_min|pool_max|prefer_socket|stmt_cache_size|[a-z_]{1,12})=[ -~&&[^&#]]{0,12}",
            ];
            proptest::collection::vec(one, 0..4).prop_map(|v| v.join("&"))
        }

        proptest! {
            #[test]
            fn the_password_never_leaves_the_parser(
                password in "pw[A-Za-z0-9]{10,20}",
                user in "[a-z]{1,8}",
                host in "(127\\.0\\.0\\.1|localhost|[a-z]{1,10}\\.example|\\[::1\\]|)",
                port in proptest::option::of(0u32..70000),
                db in "[a-z_/]{0,10}",
                query in params(),
                scheme in "(mysql|mysqlx|postgres|MYSQL)",
            ) {
                let port = port.map_or_else(String::new, |p| format!(":{p}"));
                let raw = format!("{scheme}://{user}:{password}@{host}{port}/{db}?{query}");
                match DatabaseUrl::parse(&raw) {
                    Ok(url) => {
                        let (shown, debug) = (url.to_string(), format!("{url:?}"));
                        prop_assert!(!shown.contains(&password), "{}", shown);
                        prop_assert!(!debug.contains(&password), "{}", debug);
                    }
                    Err(e) => {
                        let text = e.to_string();
                        prop_assert!(!text.contains(&password), "{}", text);
                        prop_assert!(text.starts_with("DATABASE_URL: ") && !text.contains('\n'), "{}", text);
                    }
                }
            }

            #[test]
            fn any_text_is_a_typed_answer(raw in "\\PC{0,120}") {
                let _ = DatabaseUrl::parse(&raw);
            }
        }
    }
}
