//! Name resolution for the sender's HTTP agent without a thread per request.
//!
//! `ureq` resolves the host of every request before it looks for a pooled connection, and when the request has a
//! timeout (the sender's always do) its default resolver runs the lookup on a new thread so that it can give up in
//! time. Every batch paid for a thread, even on a kept-alive connection. This resolver answers an IP-literal host
//! (`127.0.0.1`, `[::1]`) without any lookup, and keeps the addresses of a name for [`NAME_TTL`], asking the default
//! resolver (bounded by the request's timeout as before) only when they are older, or after the sender forgot them
//! because a request failed to connect.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long the addresses of a name are reused before it is looked up again.
pub(crate) const NAME_TTL: Duration = Duration::from_secs(30);

/// The addresses of the last name looked up.
#[derive(Debug)]
struct Cached {
    host_and_port: String,
    addresses: ResolvedSocketAddrs,
    looked_up: Instant,
}

/// A resolver the sender shares with its agent: clones see the same cache.
#[derive(Debug, Clone, Default)]
pub(crate) struct CachingResolver {
    lookup: Arc<DefaultResolver>,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl CachingResolver {
    /// Forgets the cached addresses: the next request looks the name up again.
    pub(crate) fn forget(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn cached(&self, host_and_port: &str) -> Option<ResolvedSocketAddrs> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|cached| {
                cached.host_and_port == host_and_port && cached.looked_up.elapsed() < NAME_TTL
            })
            .map(|cached| cached.addresses.clone())
    }
}

/// The port a URI names, or its scheme's default.
fn port_of(uri: &Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })
}

/// The address of an IP-literal host (`[::1]` included), `None` for a name.
fn literal_address(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port_of(uri)?))
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(address) = literal_address(uri) {
            let mut addresses = self.empty();
            addresses.push(address);
            return Ok(addresses);
        }
        let host_and_port = match (uri.host(), port_of(uri)) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            // Not a URL this resolver understands: the default resolver says why.
            _ => return self.lookup.resolve(uri, config, timeout),
        };
        if let Some(addresses) = self.cached(&host_and_port) {
            return Ok(addresses);
        }
        let addresses = self.lookup.resolve(uri, config, timeout)?;
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            host_and_port,
            addresses: addresses.clone(),
            looked_up: Instant::now(),
        });
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        assert_eq!(
            literal_address(&uri("http://127.0.0.1:4318/v1/logs")),
            Some("127.0.0.1:4318".parse().unwrap())
        );
        assert_eq!(
            literal_address(&uri("https://[::1]/batch/")),
            Some("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            literal_address(&uri("http://10.0.0.7/ingest")),
            Some("10.0.0.7:80".parse().unwrap())
        );
        assert_eq!(literal_address(&uri("http://localhost:8080/ingest")), None);
    }

    #[test]
    fn a_name_is_looked_up_once_until_forgotten() {
        let resolver = CachingResolver::default();
        let config = Config::default();
        let target = uri("http://localhost:9/ingest");
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let first = resolver.resolve(&target, &config, timeout).unwrap();
        assert!(!first.is_empty());
        assert_eq!(resolver.cached("localhost:9"), Some(first.clone()));
        assert_eq!(resolver.cached("localhost:10"), None);
        resolver.forget();
        assert_eq!(resolver.cached("localhost:9"), None);
    }
}
