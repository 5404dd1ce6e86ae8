//! Which addresses an upstream may be reached at. Upstreams are an allow-list (the config
//! names each one), and a name in an upstream's URL may resolve only to public addresses
//! unless its `allow_addresses` lists the private one: loopback, private networks,
//! link-local (where cloud metadata services answer), carrier-grade NAT, unique-local,
//! unspecified, multicast and the documentation ranges are refused otherwise.
//!
//! INVARIANT: the addresses checked are the addresses connected to. The resolver below is
//! the HTTP client's own: a name is resolved once per connection, every address it gave
//! is checked (one bad address refuses the whole answer), and the connection is made to
//! those very addresses, so a name that answers differently between a check and the
//! connection (DNS rebinding) has nothing to slip through. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An address block: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or a CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, if it is one.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_link_local() => "link-local (cloud metadata services answer here)",
        _ if ip.is_private() => "private",
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if a == 100 && (64..128).contains(&b) => "carrier-grade NAT",
        _ if ip.is_multicast() || ip.is_broadcast() || a >= 240 => "multicast or reserved",
        _ if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) => {
            "documentation or benchmarking"
        }
        _ if a == 192 && b == 0 && ip.octets()[2] == 0 => "IETF protocol assignments",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xfe00 == 0xfc00 => {
            "unique-local (private; fd00:ec2::254 is a metadata service)"
        }
        _ if ip.is_multicast() => "multicast",
        _ if first == 0x2001 && ip.segments()[1] == 0x0db8 => "documentation",
        // NAT64 and 6to4 embed an IPv4 address that may itself be private.
        _ if first == 0x0064 && ip.segments()[1] == 0xff9b => "NAT64",
        _ if first == 0x2002 => "6to4",
        _ => return None,
    })
}

/// Refuses `ip` if it is non-public and not in `allow`.
pub fn check(ip: IpAddr, allow: &[Cidr]) -> Result<(), String> {
    match special(ip) {
        Some(kind) if !allow.iter().any(|c| c.contains(ip)) => Err(format!(
            "{ip} is a {kind} address and is not in this upstream's allow_addresses"
        )),
        _ => Ok(()),
    }
}

/// The address written in `url`'s host, if it is one.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Whether `url`'s host is `localhost` or a loopback address.
pub fn is_loopback_host(url: &Url) -> bool {
    literal_ip(url).map_or(url.host_str() == Some("localhost"), |ip| {
        canonical(ip).is_loopback()
    })
}

/// The HTTP client's resolver for one upstream: every address a name resolves to is
/// checked before any is connected to.
#[derive(Debug, Clone)]
pub struct Guarded {
    pub allow: Arc<Vec<Cidr>>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            for addr in &found {
                check(addr.ip(), &allow).map_err(|e| format!("{host} resolves to {e}"))?;
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn non_public_addresses_are_refused_unless_allowed() {
        for refused in [
            "127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(check(ip(refused), &[]).is_err(), "{refused} passed");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(check(ip(public), &[]).is_ok(), "{public} refused");
        }
        let allow = [Cidr::parse("127.0.0.0/8").unwrap_or_else(|e| panic!("{e}"))];
        assert!(check(ip("127.0.0.1"), &allow).is_ok());
        assert!(check(ip("::ffff:127.0.0.1"), &allow).is_ok());
        assert!(check(ip("169.254.169.254"), &allow).is_err());
    }

    #[test]
    fn cidr_blocks_contain_what_they_should() {
        let c = |s: &str| Cidr::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(c("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("0.0.0.0/0").contains(ip("1.2.3.4")));
        assert!(c("fd00::/8").contains(ip("fd12::1")));
        assert!(!c("::1").contains(ip("::2")));
        for bad in ["10.0.0.0/33", "nope", "::1/129", "1.2.3.4/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
