//! Which browser origins may call the API (CORS), for the dashboard single-page app served
//! from its own origin.
//!
//! The setting (`--cors-origins` / `PRIMA_CORS_ORIGINS`) is a comma-separated list of
//! origins: `https://dashboard.example.com`, a port wildcard (`http://localhost:*`), a
//! subdomain wildcard (`https://*.example.com`, which does not match `example.com` itself),
//! `*` (any origin: safe for this API, whose credentials are bearer tokens that a page must
//! hold itself, never cookies) or `none`. Without the setting the embedded default (SQLite)
//! allows the dev servers of this machine (`http://localhost:*`, `http://127.0.0.1:*`,
//! `http://[::1]:*`) and PostgreSQL, production, allows none.
//!
//! The preflight is answered before anything else runs (no body is read, no caller looked
//! up), with the methods and headers the dashboard sends; every answer to an allowed origin
//! names it, and every answer says `Vary: Origin`, so no cache hands one origin's answer to
//! another. Browsers do not apply CORS to WebSockets; the subscription endpoint needs no
//! origin check because a socket carries no ambient credentials (its token comes in
//! `connection_init`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use sea_orm::DbBackend;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The request id header (see `crate::app`), which clients may send and read.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Most entries of the setting (it is the operator's, but a limit costs nothing).
const MAX_ORIGINS: usize = 100;

/// The allowed origins.
#[derive(Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`*`).
    Any,
    /// These patterns (none for `none`).
    List(Vec<OriginPattern>),
}

/// One allowed origin: a scheme, a host (or `*.` and a domain) and a port (or any port).
#[derive(Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: Host,
    port: Port,
}

#[derive(Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Subdomains(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    /// No port written: the scheme's own (the browser then sends none).
    Default,
    Exact(u16),
    Any,
}

impl CorsOrigins {
    /// No origin at all.
    pub fn none() -> CorsOrigins {
        CorsOrigins::List(Vec::new())
    }

    /// The dev servers of this machine, any port.
    pub fn local_dev() -> CorsOrigins {
        "http://localhost:*,http://127.0.0.1:*,http://[::1]:*"
            .parse()
            .expect("literal patterns parse")
    }

    /// What applies when nothing is set: the embedded default (SQLite) is for development on
    /// this machine, so its dev servers may call it; PostgreSQL is production, which allows
    /// only what the operator names.
    pub fn default_for(backend: DbBackend) -> CorsOrigins {
        match backend {
            DbBackend::Sqlite => CorsOrigins::local_dev(),
            _ => CorsOrigins::none(),
        }
    }

    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &[u8]) -> bool {
        match self {
            CorsOrigins::Any => true,
            CorsOrigins::List(patterns) => {
                let Some(origin) = Origin::parse(origin) else {
                    return false;
                };
                patterns.iter().any(|pattern| pattern.matches(&origin))
            }
        }
    }

    /// The layer that answers preflights and labels answers for these origins.
    pub fn layer(&self) -> CorsLayer {
        let allow = match self {
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::List(_) => {
                let origins = Arc::new(self.clone());
                AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                    origins.allows(origin.as_bytes())
                })
            }
        };
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                REQUEST_ID,
                // Apollo Client's client awareness headers.
                HeaderName::from_static("apollographql-client-name"),
                HeaderName::from_static("apollographql-client-version"),
            ])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

impl OriginPattern {
    fn matches(&self, origin: &Origin<'_>) -> bool {
        let host = match &self.host {
            Host::Exact(host) => origin.host.eq_ignore_ascii_case(host),
            // By bytes: a hostile header may hold any UTF-8, and a `str` slice could split a
            // character.
            Host::Subdomains(domain) => {
                let (host, domain) = (origin.host.as_bytes(), domain.as_bytes());
                host.len() > domain.len() + 1
                    && host[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            }
        };
        let port = match self.port {
            Port::Any => true,
            Port::Default => origin
                .port
                .is_none_or(|port| Some(port) == default_port(&self.scheme)),
            Port::Exact(port) => origin.port.or_else(|| default_port(&self.scheme)) == Some(port),
        };
        origin.scheme.eq_ignore_ascii_case(&self.scheme) && host && port
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// An `Origin` header's value taken apart: `scheme://host[:port]`.
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

impl<'a> Origin<'a> {
    fn parse(value: &'a [u8]) -> Option<Origin<'a>> {
        let value = std::str::from_utf8(value).ok()?;
        let (scheme, rest) = value.split_once("://")?;
        let (host, port) = split_port(rest)?;
        let port = match port {
            None => None,
            Some(port) => Some(port.parse().ok()?),
        };
        (!host.is_empty()).then_some(Origin { scheme, host, port })
    }
}

/// `host[:port]`, where a host may be a bracketed IPv6 address (`[::1]:5173`).
fn split_port(rest: &str) -> Option<(&str, Option<&str>)> {
    if rest.starts_with('[') {
        let end = rest.find(']')?;
        let (host, after) = rest.split_at(end + 1);
        return match after {
            "" => Some((host, None)),
            after => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    Some(match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

impl FromStr for CorsOrigins {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        match entries.as_slice() {
            [] | ["none"] => return Ok(CorsOrigins::none()),
            ["*"] => return Ok(CorsOrigins::Any),
            _ => {}
        }
        if entries.len() > MAX_ORIGINS {
            return Err(format!("at most {MAX_ORIGINS} origins"));
        }
        entries
            .iter()
            .map(|entry| entry.parse())
            .collect::<Result<_, _>>()
            .map(CorsOrigins::List)
    }
}

impl FromStr for OriginPattern {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            Err(format!(
                "`{entry}` is not an origin ({why}); write `https://host`, `https://host:port`, \
                 `http://localhost:*`, `https://*.example.com`, `*` or `none`"
            ))
        };
        if entry == "*" || entry == "none" {
            return bad("`*` and `none` stand alone");
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            return bad("no scheme");
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return bad("the scheme must be http or https");
        }
        if rest.contains(['/', '?', '#', '@']) {
            return bad("an origin has no path, query, fragment or user");
        }
        let Some((host, port)) = split_port(rest) else {
            return bad("unbalanced brackets");
        };
        let port = match port {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => Port::Exact(port),
                _ => return bad("the port must be a number from 1 to 65535 or `*`"),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                Host::Subdomains(domain.to_owned())
            }
            Some(_) => return bad("`*.` must be followed by a domain"),
            None if host.is_empty() => return bad("no host"),
            None if host.contains('*') => return bad("`*` only as `*.domain` or as the port"),
            None => Host::Exact(host),
        };
        Ok(OriginPattern { scheme, host, port })
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            Host::Exact(host) => f.write_str(host)?,
            Host::Subdomains(domain) => write!(f, "*.{domain}")?,
        }
        match self.port {
            Port::Default => Ok(()),
            Port::Exact(port) => write!(f, ":{port}"),
            Port::Any => f.write_str(":*"),
        }
    }
}

impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorsOrigins::Any => f.write_str("*"),
            CorsOrigins::List(patterns) if patterns.is_empty() => f.write_str("none"),
            CorsOrigins::List(patterns) => {
                for (i, pattern) in patterns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{pattern}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorsOrigins({self})")
    }
}

impl fmt::Debug for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(text: &str) -> CorsOrigins {
        text.parse().expect("the setting parses")
    }

    #[test]
    fn an_exact_origin_allows_itself_and_nothing_near_it() {
        let set = origins("https://dash.example.com");
        assert!(set.allows(b"https://dash.example.com"));
        assert!(set.allows(b"https://DASH.example.com"));
        assert!(set.allows(b"https://dash.example.com:443"));
        for other in [
            "http://dash.example.com",
            "https://dash.example.com:8443",
            "https://dash.example.com.evil.test",
            "https://evildash.example.com",
            "https://x.dash.example.com",
            "null",
            "",
            "https://",
        ] {
            assert!(!set.allows(other.as_bytes()), "{other} is not allowed");
        }
    }

    #[test]
    fn a_port_wildcard_allows_every_port_of_that_host_only() {
        let set = CorsOrigins::local_dev();
        for dev in [
            "http://localhost:5173",
            "http://localhost",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
        ] {
            assert!(set.allows(dev.as_bytes()), "{dev} is a dev server");
        }
        for other in [
            "https://localhost:5173",
            "http://localhost.evil.test:5173",
            "http://127.0.0.2:5173",
            "http://localhost:99999",
            "http://localhost:x",
        ] {
            assert!(!set.allows(other.as_bytes()), "{other} is not allowed");
        }
    }

    #[test]
    fn a_subdomain_wildcard_allows_subdomains_not_the_domain_or_lookalikes() {
        let set = origins("https://*.example.com");
        assert!(set.allows(b"https://a.example.com"));
        assert!(set.allows(b"https://a.b.example.com"));
        assert!(!set.allows(b"https://example.com"));
        assert!(!set.allows(b"https://aexample.com"));
        assert!(!set.allows(b"https://.example.com"));
        assert!(!set.allows(b"https://a.example.com.evil.test"));
        // Multi-byte characters where a byte offset would split one.
        assert!(!set.allows("https://\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}.com".as_bytes()));
    }

    #[test]
    fn any_none_and_the_defaults() {
        assert!(origins("*").allows(b"https://anything.test"));
        assert!(!origins("none").allows(b"http://localhost:5173"));
        assert!(!origins("").allows(b"http://localhost:5173"));
        assert!(CorsOrigins::default_for(DbBackend::Sqlite).allows(b"http://localhost:5173"));
        assert!(!CorsOrigins::default_for(DbBackend::Postgres).allows(b"http://localhost:5173"));
        assert_eq!(
            origins(" https://a.test , http://localhost:* ").to_string(),
            "https://a.test,http://localhost:*"
        );
    }

    #[test]
    fn a_malformed_setting_is_refused_with_the_reason() {
        for (bad, why) in [
            ("dash.example.com", "no scheme"),
            ("ftp://a.test", "http or https"),
            ("https://a.test/", "no path"),
            ("https://a.test:0", "port"),
            ("https://a.test:65536", "port"),
            ("https://a*.test", "`*` only"),
            ("https://*.", "followed by a domain"),
            ("https://a.test,*", "stand alone"),
            ("https://", "no host"),
        ] {
            let err = bad.parse::<CorsOrigins>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let many = vec!["https://a.test"; MAX_ORIGINS + 1].join(",");
        assert!(many.parse::<CorsOrigins>().is_err());
    }
}
