//! The egress guard (S14).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{0:?} is not a valid URL")]
    Url(String),
    #[error("URL scheme {0:?} is not allowed: use https")]
    Scheme(String),
    #[error("URLs with a user name or password are not allowed")]
    Userinfo,
    #[error("URL has no host")]
    NoHost,
    #[error(
        "{0} is not a public address (private, loopback, link-local or reserved); an operator can allow a private network with BURNRATE_EGRESS_ALLOW"
    )]
    NotPublic(IpAddr),
    #[error("{0} may be reached only on the ports BURNRATE_EGRESS_ALLOW names for it, not on port {1}")]
    PortNotAllowed(IpAddr, u16),
    #[error(
        "{0} on port {1} is in a private network the operator has not granted to this organization (burnrate egress grant)"
    )]
    NotGranted(IpAddr, u16),
    #[error("{0:?} did not resolve to any address")]
    Unresolvable(String),
    #[error("BURNRATE_EGRESS_ALLOW: {0:?} is not a network such as 10.0.0.0/8 or 127.0.0.1/32:8080")]
    AllowList(String),
    #[error("{0:?} is not a network such as 10.0.0.0/8 or 127.0.0.1/32:8080")]
    Network(String),
    #[error("{0} is outside BURNRATE_EGRESS_ALLOW, the most any organization may reach: {1}")]
    OutsideCeiling(Network, String),
    #[error("{0} holds public addresses, which every organization reaches already")]
    Public(Network),
}

/// A network outside the public internet that may be reached, optionally on one port only: an
/// entry of the operator's allow-list, or a grant of part of it to an organization.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Network {
    net: IpNet,
    port: Option<u16>,
}

impl Network {
    /// Whether a connection to `ip` on `port` is inside it.
    fn admits(&self, ip: IpAddr, port: u16) -> bool {
        self.net.contains(&ip) && self.port.is_none_or(|p| p == port)
    }

    /// Whether every connection it admits, `wider` admits too.
    fn within(&self, wider: &Network) -> bool {
        wider.net.contains(&self.net) && (wider.port.is_none() || wider.port == self.port)
    }
}

/// `10.0.0.0/8`, `127.0.0.1/32:8080`, `[::1]:5432`, or a single address.
impl FromStr for Network {
    type Err = EgressError;

    fn from_str(raw: &str) -> Result<Self, EgressError> {
        let e = raw.trim();
        let bad = || EgressError::Network(e.to_owned());
        let (net_part, port) = if let Some(rest) = e.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = after.strip_prefix(':').map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
            (inner.to_owned(), port)
        } else if e.matches(':').count() == 1 {
            let (n, p) = e.split_once(':').ok_or_else(bad)?;
            (n.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?))
        } else {
            (e.to_owned(), None)
        };
        let net =
            IpNet::from_str(&net_part).or_else(|_| IpAddr::from_str(&net_part).map(IpNet::from)).map_err(|_| bad())?;
        // One form for one network, so that equal grants compare equal.
        Ok(Self { net: net.trunc(), port })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.port, self.net) {
            (None, net) => write!(f, "{net}"),
            (Some(port), IpNet::V4(net)) => write!(f, "{net}:{port}"),
            (Some(port), IpNet::V6(net)) => write!(f, "[{net}]:{port}"),
        }
    }
}

/// What outbound connections may reach besides public addresses: the operator's ceiling, and
/// the part of it open to whoever the guard is for.
#[derive(Clone, Debug, Default)]
pub struct EgressGuard {
    /// `BURNRATE_EGRESS_ALLOW`: the most any organization may reach.
    ceiling: Vec<Network>,
    /// What of the ceiling this guard's caller reaches: what every organization reaches
    /// (`BURNRATE_EGRESS_SHARED`) and, for an organization, what it was granted.
    reach: Vec<Network>,
}

/// The IPv4 address an IPv6 address carries inside it (mapped, compatible, NAT64, 6to4, Teredo),
/// which is where it really goes.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        // ::a.b.c.d (deprecated IPv4-compatible)
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => {
            Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
        }
        // 64:ff9b::/96 (NAT64) and 64:ff9b:1::/48 (local NAT64)
        [0x64, 0xff9b, ..] => Some(Ipv4Addr::new(o[12], o[13], o[14], o[15])),
        // 2002::/16 (6to4): the IPv4 address follows the prefix
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        // 2001::/32 (Teredo): the client address, inverted, in the last 32 bits
        [0x2001, 0, ..] => Some(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15])),
        _ => None,
    }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)              // link-local (cloud metadata)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(&ip) {
        return v4_is_public(v4);
    }
    let s0 = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s0 & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s0 & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s0 & 0xff00) == 0xff00 // multicast
        || (s0 == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || s0 == 0x0100 // discard-only 100::/64
        || (s0 & 0xe000) != 0x2000) // only 2000::/3 is global unicast
}

/// Whether an address is public (globally routable unicast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

impl EgressGuard {
    /// `entries` from `BURNRATE_EGRESS_ALLOW`: CIDRs or single addresses, optionally `:port`
    /// (`10.0.0.0/8`, `127.0.0.1/32:8080`, `[::1]:5432`), every one reached by whoever uses the
    /// guard; [`EgressGuard::sharing`] narrows what is reached without a grant.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, EgressError> {
        let ceiling = entries
            .iter()
            .map(|e| e.as_ref().parse::<Network>().map_err(|_| EgressError::AllowList(e.as_ref().trim().to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { reach: ceiling.clone(), ceiling })
    }

    /// The guard of the instance: of the ceiling, only `shared` (`BURNRATE_EGRESS_SHARED`) is
    /// reached by every organization; the rest only by the organizations granted it.
    pub fn sharing<S: AsRef<str>>(mut self, shared: &[S]) -> Result<Self, EgressError> {
        self.reach = shared.iter().map(|e| self.grantable(e.as_ref())).collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The guard of an organization granted `grants` (as stored: each once checked by
    /// [`EgressGuard::grantable`]): what every organization reaches, and those.
    pub fn granted<S: AsRef<str>>(&self, grants: &[S]) -> Result<Self, EgressError> {
        let mut reach = self.reach.clone();
        for g in grants {
            reach.push(g.as_ref().parse()?);
        }
        Ok(Self { ceiling: self.ceiling.clone(), reach })
    }

    /// `raw` as a network the operator may grant: private, and inside the ceiling.
    pub fn grantable(&self, raw: &str) -> Result<Network, EgressError> {
        let network: Network = raw.parse()?;
        let private = |ip: IpAddr| !is_public(ip);
        if !(private(network.net.network()) && private(network.net.broadcast())) {
            return Err(EgressError::Public(network));
        }
        if !self.ceiling.iter().any(|c| network.within(c)) {
            let ceiling = self.ceiling.iter().map(ToString::to_string).collect::<Vec<_>>();
            let ceiling = if ceiling.is_empty() { "nothing".to_owned() } else { ceiling.join(", ") };
            return Err(EgressError::OutsideCeiling(network, ceiling));
        }
        Ok(network)
    }

    /// Whether `ip` may be reached on `port`: inside the ceiling, and reached by this guard's
    /// caller — an entry with a port opens that port only, whether the address was written in a
    /// URL or a name resolved to it.
    fn allowed(&self, ip: IpAddr, port: u16) -> bool {
        self.ceiling.iter().any(|n| n.admits(ip, port)) && self.reach.iter().any(|n| n.admits(ip, port))
    }

    /// The check on an address about to be dialled on `port`.
    pub fn check_ip(&self, ip: IpAddr, port: u16) -> Result<(), EgressError> {
        if is_public(ip) || self.allowed(ip, port) {
            return Ok(());
        }
        if self.ceiling.iter().any(|n| n.admits(ip, port)) {
            return Err(EgressError::NotGranted(ip, port));
        }
        match self.ceiling.iter().any(|n| n.net.contains(&ip)) {
            true => Err(EgressError::PortNotAllowed(ip, port)),
            false => Err(EgressError::NotPublic(ip)),
        }
    }

    /// Resolves a tenant-supplied `host` (a name or an IP literal) for a direct connection (a
    /// database source) and checks every address it resolves to, as S14 asks: the caller dials
    /// the address returned, never the name again, so a second lookup cannot point elsewhere.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<std::net::SocketAddr, EgressError> {
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let addrs: Vec<IpAddr> = match IpAddr::from_str(literal) {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| EgressError::Unresolvable(host.to_owned()))?
                .map(|a| a.ip())
                .collect(),
        };
        self.check_answer(host, &addrs, port)?;
        // Every address passed; an IPv4 one is taken where there is one (`localhost` may also
        // name ::1, where a server listening on 127.0.0.1 is not).
        let ip = addrs.iter().find(|ip| ip.is_ipv4()).unwrap_or(&addrs[0]);
        Ok(std::net::SocketAddr::new(*ip, port))
    }

    /// The check of what `host` resolved to: something, and every address allowed — the one the
    /// connection then takes among them is not ours to choose.
    pub fn check_answer(&self, host: &str, addrs: &[IpAddr], port: u16) -> Result<(), EgressError> {
        if addrs.is_empty() {
            return Err(EgressError::Unresolvable(host.to_owned()));
        }
        addrs.iter().try_for_each(|ip| self.check_ip(*ip, port))
    }

    /// The check when a URL is saved: scheme, no userinfo, and an IP-literal host must pass
    /// [`EgressGuard::check_ip`] (names are checked when they are resolved to dial). `http` is
    /// accepted only for a literal address inside the allow-list (tests, internal receivers).
    pub fn check_url(&self, raw: &str) -> Result<url::Url, EgressError> {
        let url = url::Url::parse(raw).map_err(|_| EgressError::Url(raw.to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::Userinfo);
        }
        // Only http and https pass below, and both have a known default port.
        let port = url.port_or_known_default().unwrap_or(0);
        let literal = match url.host() {
            None => return Err(EgressError::NoHost),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        match (url.scheme(), literal) {
            ("https", Some(ip)) => self.check_ip(ip, port)?,
            ("https", None) => {}
            ("http", Some(ip)) if self.allowed(ip, port) => {}
            // A private address the allow-list opens on other ports: say which is wrong.
            ("http", Some(ip)) if !is_public(ip) => self.check_ip(ip, port)?,
            (scheme, _) => return Err(EgressError::Scheme(scheme.to_owned())),
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_metadata_and_embedded_v4_are_refused() {
        let g = EgressGuard::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(g.check_ip(ip, 443).is_err(), "{bad} must be refused");
        }
        for good in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(g.check_ip(good.parse().unwrap(), 443).is_ok(), "{good} is public");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_userinfo_and_literal_addresses() {
        let g = EgressGuard::default();
        assert!(g.check_url("https://api.openai.com/v1").is_ok());
        assert_eq!(g.check_url("http://api.openai.com").unwrap_err(), EgressError::Scheme("http".into()));
        assert_eq!(g.check_url("https://user:pw@api.openai.com").unwrap_err(), EgressError::Userinfo);
        assert!(matches!(g.check_url("https://127.0.0.1/"), Err(EgressError::NotPublic(_))));
        assert!(
            matches!(g.check_url("https://2130706433/"), Err(EgressError::NotPublic(_))),
            "decimal form of 127.0.0.1"
        );
        assert!(matches!(g.check_url("https://0x7f.1/"), Err(EgressError::NotPublic(_))), "hex form");
        assert!(matches!(g.check_url("https://[::ffff:7f00:1]/"), Err(EgressError::NotPublic(_))));
        assert!(g.check_url("file:///etc/passwd").is_err());
        assert!(g.check_url("gopher://x/").is_err());
    }

    #[test]
    fn the_operator_allow_list_opens_exactly_what_it_names() {
        let g = EgressGuard::new(&["127.0.0.1/32:8080", "10.0.0.0/8"]).unwrap();
        assert!(g.check_url("http://127.0.0.1:8080/x").is_ok());
        let other = g.check_url("http://127.0.0.1:9090/x").unwrap_err();
        assert_eq!(other, EgressError::PortNotAllowed("127.0.0.1".parse().unwrap(), 9090), "other port");
        assert!(matches!(g.check_url("http://192.168.0.1/"), Err(EgressError::NotPublic(_))));
        assert!(matches!(g.check_url("http://8.8.8.8/"), Err(EgressError::Scheme(_))), "public needs https");
        assert!(g.check_ip("10.9.8.7".parse().unwrap(), 443).is_ok());
        assert!(g.check_ip("192.168.0.1".parse().unwrap(), 443).is_err());
        // A name's answer is held to the same ports as a literal address.
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(g.check_answer("receiver.internal", &[loopback], 8080).is_ok());
        let refused = g.check_answer("receiver.internal", &[loopback], 22).unwrap_err();
        assert_eq!(refused, EgressError::PortNotAllowed(loopback, 22));
        assert!(refused.to_string().contains("not on port 22"), "{refused}");
        assert!(EgressGuard::new(&["not-a-network"]).is_err());
    }

    #[test]
    fn a_private_network_is_reached_only_by_the_organizations_granted_it() {
        let instance =
            EgressGuard::new(&["10.0.0.0/8", "127.0.0.1/32:8080"]).unwrap().sharing(&["10.9.0.0/16"]).unwrap();
        let acme = instance.granted(&["10.1.0.0/16"]).unwrap();
        let (granted, other): (IpAddr, IpAddr) = ("10.1.2.3".parse().unwrap(), "10.2.0.1".parse().unwrap());
        assert!(acme.check_ip(granted, 5432).is_ok());
        assert_eq!(instance.check_ip(granted, 5432).unwrap_err(), EgressError::NotGranted(granted, 5432));
        assert_eq!(acme.check_ip(other, 5432).unwrap_err(), EgressError::NotGranted(other, 5432));
        assert!(instance.check_ip("10.9.1.1".parse().unwrap(), 443).is_ok(), "shared with everyone");
        let refused = acme.check_url("http://10.2.0.1:8000/hook").unwrap_err().to_string();
        assert!(refused.contains("has not granted to this organization"), "{refused}");
        // Grants stay inside the ceiling, its ports included, and are private.
        assert_eq!(instance.grantable("10.1.0.7/16").unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(instance.grantable("127.0.0.1:8080").unwrap().to_string(), "127.0.0.1/32:8080");
        for (raw, says) in [
            (
                "192.168.0.0/16",
                "is outside BURNRATE_EGRESS_ALLOW, the most any organization may reach: 10.0.0.0/8, 127.0.0.1/32:8080",
            ),
            ("127.0.0.1/32:22", "is outside BURNRATE_EGRESS_ALLOW"),
            ("8.8.8.0/24", "holds public addresses"),
            ("10.0.0.0/abc", "is not a network"),
        ] {
            let e = instance.grantable(raw).unwrap_err().to_string();
            assert!(e.contains(says), "{raw}: {e}");
        }
        assert!(
            EgressGuard::new(&["10.0.0.0/8"]).unwrap().sharing(&["192.168.0.0/16"]).is_err(),
            "shared is inside too"
        );
    }
}
