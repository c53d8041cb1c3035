//! IP addresses of the network interfaces, from getifaddrs(3). \[io\]
//!
//! nix's safe iterator over getifaddrs(3) replaces the raw list walk. Link layer addresses
//! (MAC and broadcast) are not taken from here but from sysfs by the collector: nix keeps
//! an `AF_PACKET` entry's broadcast address only when the interface has `IFF_BROADCAST` or
//! `IFF_POINTOPOINT`, which would lose loopback's, and only the first six bytes of an address.

use std::net::IpAddr;

use nix::ifaddrs::InterfaceAddress;
use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage};

use super::{Address, Interface};

/// Adds getifaddrs(3)'s IPv4 and IPv6 addresses to `interfaces`, in its order, appending the
/// interfaces that /proc/net/dev did not list. Nothing is added when getifaddrs fails.
pub(super) fn add_addresses(interfaces: &mut Vec<Interface>) {
    let Ok(list) = nix::ifaddrs::getifaddrs() else { return };
    for entry in list {
        match family(&entry) {
            // A link: make sure the interface is listed, even without an IP address.
            Some(AddressFamily::Packet) => {
                interface_named(interfaces, &entry.interface_name);
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
    fn listed_interfaces_keep_their_place_and_counters() {
        let mut ifaces =
            vec![Interface { name: "lo".into(), has_counters: true, ..Interface::default() }];
        add_addresses(&mut ifaces);
        assert_eq!(ifaces.iter().filter(|i| i.name == "lo").count(), 1);
        assert!(ifaces[0].has_counters && !ifaces[0].addresses.is_empty());
    }
}
