//! Settings, from the environment (DESIGN §4).

use std::time::Duration;

use secrecy::SecretString;

/// `AUTHLEDGER_DATABASE_URL` when unset: an SQLite file in the working directory, so the
/// server starts with no database server.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://authledger.db";
/// `AUTHLEDGER_LISTEN` when unset.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `Debug` prints neither the master key nor the database URL (which may hold a password).
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub listen: String,
    /// `AUTHLEDGER_ISSUER`; `None` means `http://` + the address actually bound.
    pub issuer: Option<String>,
    /// `AUTHLEDGER_MASTER_KEY` (base64url, 32 bytes); when unset, the key file is used.
    pub master_key: Option<SecretString>,
    /// `AUTHLEDGER_MASTER_KEY_FILE`, created on first start if missing.
    pub master_key_file: std::path::PathBuf,
    /// `AUTHLEDGER_TOKEN_CACHE`: how many live access tokens the in-memory index holds.
    pub token_cache_capacity: usize,
    /// Connection limits: header-read timeout and the cap on open connections.
    pub limits: Limits,
    /// Whether this process links new events into the ledger's hash chain (and seals it).
    /// Always on for a server people use; off only to measure what the chain costs (the load
    /// benchmark's `--ledger off`): another instance or a CLI command links what is left.
    pub link_ledger: bool,
    /// `AUTHLEDGER_ARCHIVE_DIR`: where archived events are, for a rebuild started from the
    /// console to replay them.
    pub archive_dir: Option<std::path::PathBuf>,
}

/// Connection limits (README, *Security*), enforced by the HTTP server's accept loop, and
/// who may say where a connection comes from.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may stay idle.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive, once the headers are in.
    pub body_read_timeout: Duration,
    /// How many connections may be open at once (`AUTHLEDGER_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`AUTHLEDGER_TRUSTED_PROXIES`):
    /// behind one, every connection comes from the proxy, so without this the audit would
    /// record the proxy's address and throttling one address would throttle everyone.
    pub trusted_proxies: TrustedProxies,
}

/// Addresses and networks of trusted reverse proxies, e.g. `127.0.0.1, 10.0.0.0/8`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(std::sync::Arc<[ipnet::IpNet]>);

impl TrustedProxies {
    /// Parses a comma- or space-separated list of IP addresses and CIDR networks.
    pub fn parse(raw: &str) -> Result<TrustedProxies, String> {
        let nets = raw
            .split([',', ' '])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<ipnet::IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("`{part}` is not an IP address or network (e.g. 10.0.0.0/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(nets.into()))
    }

    fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer`, unless it is a trusted proxy, in which case the last
    /// address of `X-Forwarded-For` (all its values, in order) that is not itself a trusted
    /// proxy. Addresses before it were written by the client and prove nothing.
    pub fn client(&self, peer: std::net::IpAddr, forwarded_for: &[&str]) -> std::net::IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return ip,
                // Garbage where an address should be: stop trusting the chain there.
                Err(_) => return peer,
            }
        }
        peer
    }
}

pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// `AUTHLEDGER_TOKEN_CACHE` when unset: about 200 bytes each, so at most ~100 MB.
pub const DEFAULT_TOKEN_CACHE: usize = 500_000;

/// `AUTHLEDGER_MASTER_KEY_FILE` when unset.
pub const DEFAULT_MASTER_KEY_FILE: &str = "authledger.key";

impl Config {
    /// Refuses a listen address or issuer that cannot work, with a message that says what is
    /// expected, before anything is opened.
    pub fn check(&self) -> anyhow::Result<()> {
        let listen_ok = self
            .listen
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !listen_ok {
            anyhow::bail!(
                "AUTHLEDGER_LISTEN `{}` is not HOST:PORT; expected e.g. 127.0.0.1:8080, \
                 0.0.0.0:8080 or [::1]:8080",
                self.listen
            );
        }
        if let Some(issuer) = &self.issuer {
            // RFC 8414 §2: an https URL (http for local testing) with no query or fragment.
            let usable = url::Url::parse(issuer).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
            if !usable {
                anyhow::bail!(
                    "AUTHLEDGER_ISSUER `{issuer}` is not an absolute http(s) URL without query \
                     or fragment; expected e.g. https://auth.example.com"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, issuer: Option<&str>) -> Config {
        Config {
            database_url: DEFAULT_DATABASE_URL.into(),
            listen: listen.into(),
            issuer: issuer.map(str::to_owned),
            master_key: None,
            master_key_file: DEFAULT_MASTER_KEY_FILE.into(),
            token_cache_capacity: DEFAULT_TOKEN_CACHE,
            limits: Default::default(),
            link_ledger: true,
            archive_dir: None,
        }
    }

    #[test]
    fn a_listen_address_needs_a_port_and_an_issuer_must_be_an_http_url() {
        assert!(config("127.0.0.1:8080", Some("https://auth.example"))
            .check()
            .is_ok());
        assert!(config("[::1]:0", None).check().is_ok());
        let error = config("localhost", None).check().unwrap_err().to_string();
        assert!(error.contains("HOST:PORT"), "{error}");
        assert!(config("127.0.0.1:8080", Some("auth.example"))
            .check()
            .is_err());
        assert!(config("127.0.0.1:8080", Some("ftp://auth.example"))
            .check()
            .is_err());
        assert!(config("127.0.0.1:8080", Some("https://a.example/?x=1"))
            .check()
            .is_err());
    }
}

#[cfg(test)]
mod secrets_in_config {
    use super::*;

    #[test]
    fn debug_prints_neither_the_master_key_nor_the_database_password() {
        let config = Config {
            database_url: "postgres://app:hunter2@db/authledger".into(),
            master_key: Some("a-master-key-value".into()),
            listen: DEFAULT_LISTEN.into(),
            issuer: None,
            master_key_file: DEFAULT_MASTER_KEY_FILE.into(),
            token_cache_capacity: DEFAULT_TOKEN_CACHE,
            limits: Default::default(),
            link_ledger: true,
            archive_dir: None,
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("a-master-key-value"),
            "{printed}"
        );
    }
}

#[cfg(test)]
mod trusted_proxies {
    use super::TrustedProxies;

    #[test]
    fn only_a_trusted_proxy_names_the_client_and_only_the_hop_it_saw() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // Straight from a client: its header is its own invention.
        assert_eq!(
            proxies.client(ip("203.0.113.9"), &["198.51.100.1"]),
            ip("203.0.113.9")
        );
        // Through the proxy: the address the proxy saw (what the client wrote before is not).
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &["6.6.6.6, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Through two trusted hops.
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &["198.51.100.7", "10.1.2.3"]),
            ip("198.51.100.7")
        );
        // The proxy sent none, or garbage: the proxy's own address.
        assert_eq!(proxies.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &["not-an-ip"]),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
