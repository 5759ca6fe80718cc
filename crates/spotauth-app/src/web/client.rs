//! Who a request comes from: the peer address, or, only when the peer is a configured trusted
//! proxy, the client address that proxy reports in the one header it writes
//! (`TRUSTED_PROXY_HEADER`: `X-Forwarded-For` or `Forwarded`). Never trusted by default: any
//! client can write those headers, and a proxy passes on the one it does not write itself, so
//! only the configured one is read.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

/// The header the trusted proxies write (`TRUSTED_PROXY_HEADER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, HAProxy, cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies whose forwarding header is believed (`TRUSTED_PROXIES`), and which header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// Why `TRUSTED_PROXIES` or `TRUSTED_PROXY_HEADER` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedProxiesError {
    /// A list entry is neither an address nor a range.
    #[error("TRUSTED_PROXIES must be a comma-separated list of IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7")]
    List,
    /// Another header name.
    #[error("TRUSTED_PROXY_HEADER must be x-forwarded-for or forwarded")]
    Header,
}

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 192.0.2.7, 2001:db8::/32` (a bare address is a single host) and the
    /// header name (`x-forwarded-for` or `forwarded`, any case).
    pub fn parse(list: &str, header: &str) -> Result<Self, TrustedProxiesError> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TrustedProxiesError::List)?;
        let header = match header.trim().to_ascii_lowercase().as_str() {
            "" | "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            _ => return Err(TrustedProxiesError::Header),
        };
        Ok(TrustedProxies { nets, header })
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of `req`: the peer, unless the peer is a trusted proxy; then the
    /// forwarded chain is read from the right (the nearest hop first) and the first address
    /// that is not itself a trusted proxy is the client. An entry that cannot be read ends the
    /// walk at the last address known good.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = canonical(req.peer_addr()?.ip());
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for hop in forwarded_chain(req, self.header).into_iter().rev() {
            let Some(ip) = hop else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses a chain of proxies reported in `header`, leftmost (the original client)
/// first; `None` for an entry that is not an address (`unknown`, an obfuscated identifier,
/// garbage).
fn forwarded_chain(req: &HttpRequest, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name| req.headers().get_all(name).filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    if header == ForwardedHeader::Forwarded {
        return values(header::FORWARDED)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                let node = element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map(|(_, v)| v.trim().trim_matches('"'));
                node.and_then(parse_node)
            })
            .collect();
    }
    values(header::X_FORWARDED_FOR).iter().flat_map(|v| v.split(',')).map(|s| parse_node(s.trim())).collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    node.strip_prefix('[').and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse().ok()).map(canonical)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn client_via(header: &str, trusted: &str, peer: &str, headers: &[(&str, &str)]) -> Option<String> {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (k, v) in headers {
            req = req.append_header((*k, *v));
        }
        TrustedProxies::parse(trusted, header).unwrap().client_ip(&req.to_http_request()).map(|ip| ip.to_string())
    }

    fn client(trusted: &str, peer: &str, headers: &[(&str, &str)]) -> Option<String> {
        client_via("x-forwarded-for", trusted, peer, headers)
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_proxy() {
        let spoofed = [("x-forwarded-for", "198.51.100.9"), ("forwarded", "for=198.51.100.9")];
        // Untrusted by default: a client cannot pick its own address.
        assert_eq!(client("", "203.0.113.5:1000", &spoofed).as_deref(), Some("203.0.113.5"));
        assert_eq!(client("10.0.0.0/8", "203.0.113.5:1000", &spoofed).as_deref(), Some("203.0.113.5"));
        // From a trusted proxy: only the header it writes is read. A client's own `Forwarded`,
        // passed on by a proxy that writes `X-Forwarded-For`, picks nothing.
        let passed_on = [("forwarded", "for=1.2.3.4"), ("x-forwarded-for", "198.51.100.9")];
        assert_eq!(client("10.0.0.0/8", "10.1.2.3:1000", &passed_on).as_deref(), Some("198.51.100.9"));
        let passed_on = [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=198.51.100.9")];
        assert_eq!(client_via("forwarded", "10.0.0.0/8", "10.1.2.3:1000", &passed_on).as_deref(), Some("198.51.100.9"));
        let xff = [("x-forwarded-for", "198.51.100.9, 10.0.0.7")];
        assert_eq!(client("10.0.0.0/8", "10.1.2.3:1000", &xff).as_deref(), Some("198.51.100.9"));
        // A client that prepends a fake hop gets the address the proxy saw, not the fake one.
        let prepended = [("x-forwarded-for", "1.2.3.4, 198.51.100.9")];
        assert_eq!(client("10.0.0.0/8", "10.1.2.3:1000", &prepended).as_deref(), Some("198.51.100.9"));
        let v6 = [("forwarded", r#"for="[2001:db8::1]:4711", for=10.0.0.2"#)];
        assert_eq!(client_via("forwarded", "10.0.0.0/8", "10.1.2.3:1000", &v6).as_deref(), Some("2001:db8::1"));
        let garbage = [("forwarded", "for=unknown, for=198.51.100.9")];
        assert_eq!(client_via("Forwarded", "10.0.0.0/8", "10.1.2.3:1000", &garbage).as_deref(), Some("198.51.100.9"));
        let only_garbage = [("x-forwarded-for", "nonsense")];
        assert_eq!(client("10.0.0.0/8", "10.1.2.3:1000", &only_garbage).as_deref(), Some("10.1.2.3"));
        // A mapped IPv6 peer counts as its IPv4 address; the nearest untrusted hop is the client.
        assert_eq!(client("192.0.2.7", "[::ffff:192.0.2.7]:1000", &xff).as_deref(), Some("10.0.0.7"));
    }

    #[test]
    fn the_list_is_parsed_strictly() {
        assert!(TrustedProxies::parse("", "").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/8, 192.0.2.7,2001:db8::/32", "x-forwarded-for").is_ok());
        assert!(TrustedProxies::parse("10.0.0.0/33", "").is_err());
        assert!(TrustedProxies::parse("proxy.internal", "").is_err());
        assert_eq!(TrustedProxies::parse("", "x-real-ip"), Err(TrustedProxiesError::Header));
    }

    proptest::proptest! {
        /// Whatever a client writes in the forwarding headers: no panic, and with no trusted
        /// proxy (the default) the client is always the peer.
        #[test]
        fn forwarding_headers_never_panic_and_never_count_by_default(
            xff in "[ -~]{0,120}",
            fwd in "[ -~]{0,120}",
            peer in proptest::prelude::any::<std::net::Ipv4Addr>(),
        ) {
            let headers = [("x-forwarded-for", xff.as_str()), ("forwarded", fwd.as_str())];
            let peer_addr = format!("{peer}:4000");
            proptest::prop_assert_eq!(client("", &peer_addr, &headers), Some(peer.to_string()));
            // From a trusted proxy the answer is some address, whatever the text.
            proptest::prop_assert!(client("0.0.0.0/0", &peer_addr, &headers).is_some());
            proptest::prop_assert!(client_via("forwarded", "0.0.0.0/0", &peer_addr, &headers).is_some());
        }
    }
}
