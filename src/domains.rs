//! Custom domains: a tenant adds a host, publishes a DNS TXT record with the verification token,
//! and the host routes requests to the tenant once verified (`docs/tenancy.md`).
//!
//! TXT lookups go through [`TxtResolver`], so tests (and air-gapped installs) can replace the
//! system resolver. [`SystemResolver`] asks the name servers of `/etc/resolv.conf` through
//! `hickory-resolver`.

use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_resolver::{
    TokioResolver,
    config::{NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
};
use rand::Rng;

/// Normalises a custom domain (trimmed, lowercased, without a trailing dot) and checks that it
/// is one: a DNS name of at least two labels that is not a loopback name (`localhost`,
/// `*.localhost`) and not an IP literal (v4 in any form a browser reads as one — the last label
/// numeric, like `127.1` or `0x7f.1` —, v6, bracketed or not). The error says why not.
pub fn custom_host(host: &str) -> Result<String, String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = !last.is_empty()
        && (last.chars().all(|c| c.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit())));
    if host.starts_with('[')
        || host.contains(':')
        || host.parse::<std::net::IpAddr>().is_ok()
        || numeric
    {
        return Err(format!("`{host}` is an IP address, not a custom domain"));
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(format!("`{host}` is a loopback name, not a custom domain"));
    }
    let valid = host.len() <= 253
        && host.contains('.')
        && host.split('.').all(crate::tenants::names::is_dns_label);
    if !valid {
        return Err(format!(
            "`{}` is not a host name such as app.example.org",
            host.escape_debug()
        ));
    }
    Ok(host)
}

/// The DNS name whose TXT records prove control of `host`.
pub fn challenge_name(host: &str) -> String {
    format!("_forklift-challenge.{host}")
}

/// The TXT value that proves control, for `token`.
pub fn challenge_value(token: &str) -> String {
    format!("forklift-verification={token}")
}

/// A new verification token: 32 random hex characters.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Looks up TXT records.
pub trait TxtResolver: Send + Sync {
    /// The TXT strings published at `name` (empty when there are none).
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<String>>>;
}

/// The resolver in use, shareable.
pub type SharedResolver = Arc<dyn TxtResolver>;

/// Asks the system's name servers (`/etc/resolv.conf`; `127.0.0.1` when it names none) through
/// `hickory-resolver`: answers are matched to their question, a truncated UDP answer is asked
/// again over TCP, and answers are cached for their TTL. Built on first use.
#[derive(Clone, Default)]
pub struct SystemResolver {
    resolver: Arc<std::sync::OnceLock<TokioResolver>>,
}

impl SystemResolver {
    fn resolver(&self) -> &TokioResolver {
        self.resolver.get_or_init(|| {
            TokioResolver::builder_tokio()
                .and_then(|builder| builder.build())
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "no system DNS configuration; asking 127.0.0.1");
                    let local = NameServerConfig::udp_and_tcp(std::net::Ipv4Addr::LOCALHOST.into());
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(vec![local]),
                        TokioRuntimeProvider::default(),
                    )
                    .build()
                    .expect("a resolver over one name server builds")
                })
        })
    }
}

impl TxtResolver for SystemResolver {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        Box::pin(async move {
            // A fully qualified name: no search domains are tried.
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let lookup = match self.resolver().txt_lookup(fqdn).await {
                Ok(lookup) => lookup,
                // No such name, or no TXT record there: nothing is published.
                Err(err) if err.is_no_records_found() => return Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            };
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    // One record is a sequence of strings, joined.
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|chunk| String::from_utf8_lossy(chunk))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }
}

/// A resolver answering from a fixed table: for tests and for installs without DNS.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    pub records: std::collections::HashMap<String, Vec<String>>,
}

impl TxtResolver for StaticResolver {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        let found = self.records.get(name).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_domains_are_names_not_addresses() {
        assert_eq!(
            custom_host(" Portal.Acme.Example. ").as_deref(),
            Ok("portal.acme.example")
        );
        for bad in [
            "localhost",
            "app.localhost",
            "APP.LOCALHOST.",
            "127.0.0.1",
            "10.1.2.3",
            "127.1",
            "0x7f.0.0.1",
            "0x7f.1",
            "::1",
            "[::1]",
            "[2001:db8::1]",
            "2001:db8::1",
            "example",
            "a..b",
            "a\0.example",
            "-a.example",
        ] {
            assert!(custom_host(bad).is_err(), "{bad}");
        }
        // A numeric label that is not the last one is a name.
        assert!(custom_host("1.example.org").is_ok());
    }
}
