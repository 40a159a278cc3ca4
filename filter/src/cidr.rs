//! The `cidr` operator: an IPv4 or IPv6 network in CIDR notation, host bits zero.

use std::net::IpAddr;

/// A network: its address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `address/bits`; `None` when malformed or when host bits are set.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (address, bits) = text.split_once('/')?;
        let network: IpAddr = address.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let cidr = Cidr { network, bits };
        (bits <= width(network) && masked(network, bits) == bits_of(network)).then_some(cidr)
    }

    /// Whether `address` (text, as carried by a message) is an IP address inside the network.
    pub(crate) fn contains_text(&self, address: &str) -> bool {
        address.parse().is_ok_and(|ip| self.contains(ip))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.bits) == masked(self.network, self.bits)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address with all but its first `bits` bits cleared.
fn masked(ip: IpAddr, bits: u8) -> u128 {
    let host_bits = u32::from(width(ip) - bits.min(width(ip)));
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    bits_of(ip) & mask
}
