//! Custom domains: a tenant adds a host, publishes a DNS TXT record with the verification token,
//! and the host routes requests to the tenant once verified (`docs/tenancy.md`).
//!
//! TXT lookups go through [`TxtResolver`], so tests (and air-gapped installs) can replace the
//! system resolver. [`SystemResolver`] asks the name servers of `/etc/resolv.conf` over UDP.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::future::BoxFuture;
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

/// Asks the system's name servers (from `/etc/resolv.conf`) over UDP.
#[derive(Clone, Debug, Default)]
pub struct SystemResolver;

impl SystemResolver {
    fn servers() -> Vec<SocketAddr> {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut servers: Vec<SocketAddr> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        if servers.is_empty() {
            servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        servers
    }
}

impl TxtResolver for SystemResolver {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        Box::pin(async move {
            let mut last_error = anyhow::anyhow!("no name server answered");
            for server in Self::servers() {
                match query_txt(server, name).await {
                    Ok(records) => return Ok(records),
                    Err(err) => last_error = err,
                }
            }
            Err(last_error)
        })
    }
}

/// A DNS query for the TXT records of `name`.
fn encode_query(id: u16, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut packet = Vec::with_capacity(512);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00]); // recursion desired
    packet.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.trim_end_matches('.').split('.') {
        anyhow::ensure!(
            !label.is_empty() && label.len() < 64,
            "invalid DNS name `{name}`"
        );
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&[0, 16, 0, 1]); // TXT, IN
    Ok(packet)
}

/// Skips a (possibly compressed) name at `pos`; returns the position after it.
fn skip_name(packet: &[u8], mut pos: usize) -> anyhow::Result<usize> {
    loop {
        let len = *packet
            .get(pos)
            .ok_or_else(|| anyhow::anyhow!("truncated DNS answer"))?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xC0 == 0xC0 => return Ok(pos + 2),
            l => pos += 1 + l as usize,
        }
    }
}

fn u16_at(packet: &[u8], pos: usize) -> anyhow::Result<u16> {
    let bytes = packet
        .get(pos..pos + 2)
        .ok_or_else(|| anyhow::anyhow!("truncated DNS answer"))?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// The TXT strings of a DNS answer to query `id`.
fn decode_answer(id: u16, packet: &[u8]) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(u16_at(packet, 0)? == id, "DNS answer to another query");
    let rcode = packet.get(3).copied().unwrap_or(0) & 0x0F;
    if rcode == 3 {
        return Ok(Vec::new()); // NXDOMAIN: no such name, so no records
    }
    anyhow::ensure!(rcode == 0, "DNS error code {rcode}");
    let questions = u16_at(packet, 4)?;
    let answers = u16_at(packet, 6)?;
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(packet, pos)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        pos = skip_name(packet, pos)?;
        let kind = u16_at(packet, pos)?;
        let len = u16_at(packet, pos + 8)? as usize;
        let data = packet
            .get(pos + 10..pos + 10 + len)
            .ok_or_else(|| anyhow::anyhow!("truncated DNS answer"))?;
        if kind == 16 {
            // One record is a sequence of length-prefixed strings, joined.
            let mut text = String::new();
            let mut i = 0;
            while i < data.len() {
                let n = data[i] as usize;
                let chunk = data.get(i + 1..i + 1 + n).unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(chunk));
                i += 1 + n;
            }
            out.push(text);
        }
        pos += 10 + len;
    }
    Ok(out)
}

async fn query_txt(server: SocketAddr, name: &str) -> anyhow::Result<Vec<String>> {
    let id: u16 = rand::rng().random();
    let query = encode_query(id, name)?;
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    socket.send(&query).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
        .await
        .map_err(|_| anyhow::anyhow!("DNS server {server} did not answer"))??;
    decode_answer(id, &buf[..n])
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

    #[test]
    fn a_txt_answer_is_decoded() {
        let query = encode_query(7, "_forklift-challenge.example.org").expect("query");
        let mut answer = query.clone();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 1; // one answer
        answer.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
        let text = b"forklift-verification=abc";
        answer.extend_from_slice(&((text.len() + 1) as u16).to_be_bytes());
        answer.push(text.len() as u8);
        answer.extend_from_slice(text);
        assert_eq!(
            decode_answer(7, &answer).expect("decoded"),
            vec!["forklift-verification=abc".to_string()]
        );
        assert!(decode_answer(8, &answer).is_err(), "another query's answer");
    }
}
