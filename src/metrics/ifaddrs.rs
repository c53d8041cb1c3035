//! Addresses of the network interfaces, from getifaddrs(3). \[io\]
//!
//! nix's safe iterator over getifaddrs(3) replaces the raw list walk. Two things it does
//! differently from reading the list by hand, and how they are met: it keeps an `AF_PACKET`
//! entry's broadcast address only when the interface has `IFF_BROADCAST` (else the same field
//! as the destination, with `IFF_POINTOPOINT`), so loopback's all-zero one is restored here and
//! a link with neither flag (a bare `sit0`) has none; and it gives at most 6 bytes of a hardware
//! address (InfiniBand's 20 were cut to 8 before, to 6 now).

use std::net::IpAddr;

use nix::ifaddrs::InterfaceAddress;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{AddressFamily, LinkAddr, SockaddrLike, SockaddrStorage};

use super::{Address, Interface};

/// Adds getifaddrs(3)'s IPv4 and IPv6 addresses (in its order) and hardware addresses to
/// `interfaces`, appending the interfaces that /proc/net/dev did not list. Nothing is added
/// when getifaddrs fails.
pub(super) fn add_addresses(interfaces: &mut Vec<Interface>) {
    let Ok(list) = nix::ifaddrs::getifaddrs() else { return };
    for entry in list {
        match family(&entry) {
            Some(AddressFamily::Packet) => {
                let iface = interface_named(interfaces, &entry.interface_name);
                if let Some(ll) = entry.address.as_ref().and_then(SockaddrStorage::as_link_addr) {
                    iface.link.address = Some(hw_address(ll));
                    iface.link.broadcast = link_broadcast(&entry, ll);
                }
            }
            Some(AddressFamily::Inet | AddressFamily::Inet6) => {
                if let Some(address) = address(&entry) {
                    interface_named(interfaces, &entry.interface_name).addresses.push(address);
                }
            }
            _ => {}
        }
    }
}

fn family(entry: &InterfaceAddress) -> Option<AddressFamily> {
    entry.address.as_ref().and_then(SockaddrStorage::family)
}

/// The entry's IP address and its prefix length (the whole address when there is no netmask).
fn address(entry: &InterfaceAddress) -> Option<Address> {
    let addr = entry.address.as_ref()?;
    let mask = entry.netmask.as_ref();
    if let Some(v4) = addr.as_sockaddr_in() {
        let prefix = mask.and_then(|m| m.as_sockaddr_in()).map(|m| m.ip().to_bits().leading_ones());
        return Some(Address {
            ip: IpAddr::V4(v4.ip()),
            prefix_len: prefix_u8(prefix.unwrap_or(32)),
        });
    }
    let v6 = addr.as_sockaddr_in6()?;
    let prefix = mask.and_then(|m| m.as_sockaddr_in6()).map(|m| m.ip().to_bits().leading_ones());
    Some(Address { ip: IpAddr::V6(v6.ip()), prefix_len: prefix_u8(prefix.unwrap_or(128)) })
}

/// The link's broadcast address: the entry's, or all zeros for loopback, whose broadcast
/// address the kernel reports although it has no `IFF_BROADCAST`.
fn link_broadcast(entry: &InterfaceAddress, ll: &LinkAddr) -> Option<String> {
    let other = entry.broadcast.as_ref().or(entry.destination.as_ref());
    match other.and_then(SockaddrStorage::as_link_addr) {
        Some(b) => Some(hw_address(b)),
        None if entry.flags.contains(InterfaceFlags::IFF_LOOPBACK) => {
            Some(hex_colons(&vec![0; ll.halen().min(6)]))
        }
        None => None,
    }
}

/// A link layer address as lowercase hex bytes joined by colons (`halen` bytes, at most 6).
fn hw_address(ll: &LinkAddr) -> String {
    let bytes = ll.addr().unwrap_or_default();
    hex_colons(&bytes[..ll.halen().min(bytes.len())])
}

fn hex_colons(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The interface called `name`, appended (without counters) when /proc/net/dev lacked it.
fn interface_named<'a>(interfaces: &'a mut Vec<Interface>, name: &str) -> &'a mut Interface {
    let i = match interfaces.iter().position(|i| i.name == name) {
        Some(i) => i,
        None => {
            interfaces.push(Interface { name: name.to_string(), ..Interface::default() });
            interfaces.len() - 1
        }
    };
    &mut interfaces[i]
}

fn prefix_u8(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn loopback_has_its_addresses() {
        let mut ifaces = Vec::new();
        add_addresses(&mut ifaces);
        let lo = ifaces.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo
            .addresses
            .contains(&Address { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), prefix_len: 8 }));
        assert!(!lo.has_counters, "appended, since /proc/net/dev was not read here");
    }

    #[test]
    fn hardware_addresses_are_hex_with_colons() {
        assert_eq!(hex_colons(&[0x02, 0xfc, 0, 0, 0, 1]), "02:fc:00:00:00:01");
        assert_eq!(hex_colons(&[]), "");
    }

    #[test]
    fn loopback_has_its_link_addresses() {
        let mut ifaces = Vec::new();
        add_addresses(&mut ifaces);
        let lo = ifaces.iter().find(|i| i.name == "lo").expect("lo");
        assert_eq!(lo.link.address.as_deref(), Some("00:00:00:00:00:00"));
        assert_eq!(lo.link.broadcast.as_deref(), Some("00:00:00:00:00:00"));
    }

    #[test]
    fn listed_interfaces_keep_their_place_and_counters() {
        let mut ifaces =
            vec![Interface { name: "lo".into(), has_counters: true, ..Interface::default() }];
        add_addresses(&mut ifaces);
        assert_eq!(ifaces.iter().filter(|i| i.name == "lo").count(), 1);
        assert!(ifaces[0].has_counters && !ifaces[0].addresses.is_empty());
    }
}
