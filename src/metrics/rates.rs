//! Utilisation and rates between two collections. \[pure\]
//!
//! The collector keeps the previous cycle's counters; these functions pair each processor and
//! interface with its previous reading and compute what changed. The arithmetic of one pair
//! (psutil's utilisation, counters going backwards) is [`CpuTimes::utilisation_since`] and
//! [`NetRates::between`]; this module owns the pairing: by position first (the kernel lists
//! processors and interfaces in a stable order), then by id or name when the list changed
//! (a processor taken offline, an interface removed or renamed).

use super::proc::NetDev;
use super::{Core, CpuTimes, Frequency, Interface, NetRates};

/// The previous reading paired with the `i`-th current one: the one at the same position when it
/// is the same thing (`same`), else the first that is, else none.
fn previous<T>(prev: &[T], i: usize, same: impl Fn(&T) -> bool) -> Option<&T> {
    match prev.get(i) {
        Some(p) if same(p) => Some(p),
        _ => prev.iter().find(|p| same(p)),
    }
}

/// Busy percentage of all processors since `prev`, or since boot on the first collection
/// (`prev` is `None`).
pub(super) fn utilisation(prev: Option<&CpuTimes>, cur: &CpuTimes) -> f64 {
    cur.utilisation_since(prev.unwrap_or(&CpuTimes::default()))
}

/// One [`Core`] per current processor, its utilisation since its previous reading in `prev`,
/// or since boot on the first collection (`prev` is `None`) and for a processor not seen
/// before (brought online). Frequencies are left unknown.
pub(super) fn cores(prev: Option<&[(u32, CpuTimes)]>, cur: &[(u32, CpuTimes)]) -> Vec<Core> {
    let since_boot = CpuTimes::default();
    cur.iter()
        .enumerate()
        .map(|(i, (id, times))| {
            let before = prev
                .and_then(|prev| previous(prev, i, |(pid, _)| pid == id))
                .map_or(&since_boot, |(_, t)| t);
            Core {
                id: *id,
                times: *times,
                utilisation: times.utilisation_since(before),
                frequency: Frequency::default(),
            }
        })
        .collect()
}

/// One [`Interface`] per /proc/net/dev entry, with its rates since its previous reading in
/// `prev`, `seconds` ago. No rates on the first collection (`seconds` is `None`) or for an
/// interface not seen before. Addresses and link facts are left for the caller.
pub(super) fn interfaces(prev: &[NetDev], cur: &[NetDev], seconds: Option<f64>) -> Vec<Interface> {
    cur.iter()
        .enumerate()
        .map(|(i, dev)| {
            let before = previous(prev, i, |p| p.name == dev.name);
            let (rx_rate, tx_rate) = match (before, seconds) {
                (Some(p), Some(secs)) => (
                    NetRates::between(&p.rx, &dev.rx, secs),
                    NetRates::between(&p.tx, &dev.tx, secs),
                ),
                _ => (None, None),
            };
            Interface {
                name: dev.name.clone(),
                has_counters: true,
                rx: dev.rx,
                tx: dev.tx,
                rx_rate,
                tx_rate,
                addresses: Vec::new(),
                link: Default::default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::NetCounters;

    fn times(user: f64, idle: f64) -> CpuTimes {
        CpuTimes { user, idle, ..CpuTimes::default() }
    }

    fn dev(name: &str, rx_bytes: u64, tx_bytes: u64) -> NetDev {
        NetDev {
            name: name.to_string(),
            rx: NetCounters { bytes: rx_bytes, ..NetCounters::default() },
            tx: NetCounters { bytes: tx_bytes, ..NetCounters::default() },
        }
    }

    fn utilisations(cores: &[Core]) -> Vec<(u32, f64)> {
        cores.iter().map(|c| (c.id, c.utilisation)).collect()
    }

    fn rx_rates(ifaces: &[Interface]) -> Vec<(&str, Option<f64>)> {
        ifaces.iter().map(|i| (i.name.as_str(), i.rx_rate.map(|r| r.bytes))).collect()
    }

    #[test]
    fn the_first_collection_is_since_boot() {
        assert_eq!(utilisation(None, &times(1.0, 3.0)), 25.0);
        let cores = cores(None, &[(0, times(1.0, 1.0)), (1, times(3.0, 1.0))]);
        assert_eq!(utilisations(&cores), [(0, 50.0), (1, 75.0)]);
        assert!(cores.iter().all(|c| c.frequency == Frequency::default()));
    }

    #[test]
    fn later_collections_are_since_the_previous_one() {
        assert_eq!(utilisation(Some(&times(1.0, 3.0)), &times(2.0, 6.0)), 25.0);
        let prev = [(0, times(1.0, 1.0)), (1, times(3.0, 1.0))];
        let cur = [(0, times(1.0, 3.0)), (1, times(5.0, 1.0))];
        assert_eq!(utilisations(&cores(Some(&prev), &cur)), [(0, 0.0), (1, 100.0)]);
    }

    #[test]
    fn processors_pair_by_id_when_one_goes_offline_or_comes_back() {
        let prev = [(0, times(1.0, 1.0)), (1, times(1.0, 1.0)), (2, times(1.0, 1.0))];
        // cpu1 taken offline: cpu2 moves to position 1 and still pairs with its own reading.
        let cur = [(0, times(2.0, 1.0)), (2, times(1.0, 2.0))];
        assert_eq!(utilisations(&cores(Some(&prev), &cur)), [(0, 100.0), (2, 0.0)]);
        // cpu3 appears: no previous reading, so since boot.
        let cur = [(0, times(2.0, 1.0)), (3, times(1.0, 3.0))];
        assert_eq!(utilisations(&cores(Some(&prev), &cur)), [(0, 100.0), (3, 25.0)]);
    }

    #[test]
    fn no_rates_on_the_first_collection() {
        let cur = [dev("lo", 10, 10)];
        assert_eq!(rx_rates(&interfaces(&[], &cur, None)), [("lo", None)]);
        assert_eq!(rx_rates(&interfaces(&cur, &cur, None)), [("lo", None)]);
        let ifaces = interfaces(&[], &cur, Some(1.0));
        assert_eq!(rx_rates(&ifaces), [("lo", None)]);
        assert!(ifaces[0].has_counters && ifaces[0].addresses.is_empty());
        assert_eq!(ifaces[0].rx.bytes, 10);
    }

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let prev = [dev("lo", 100, 0), dev("eth0", 0, 0)];
        let cur = [dev("lo", 300, 50), dev("eth0", 1000, 0)];
        let ifaces = interfaces(&prev, &cur, Some(2.0));
        assert_eq!(rx_rates(&ifaces), [("lo", Some(100.0)), ("eth0", Some(500.0))]);
        assert_eq!(ifaces[0].tx_rate.map(|r| r.bytes), Some(25.0));
    }

    #[test]
    fn interfaces_pair_by_name_when_the_list_changes() {
        let prev = [dev("lo", 0, 0), dev("eth0", 0, 0), dev("wlan0", 0, 0)];
        // eth0 removed, a tunnel added at the end.
        let cur = [dev("lo", 10, 0), dev("wlan0", 20, 0), dev("tun0", 30, 0)];
        assert_eq!(
            rx_rates(&interfaces(&prev, &cur, Some(1.0))),
            [("lo", Some(10.0)), ("wlan0", Some(20.0)), ("tun0", None)]
        );
    }

    #[test]
    fn a_counter_going_backwards_is_no_traffic() {
        let prev = [dev("eth0", 1000, 0)];
        let cur = [dev("eth0", 10, 0)];
        assert_eq!(rx_rates(&interfaces(&prev, &cur, Some(1.0))), [("eth0", Some(0.0))]);
    }

    #[test]
    fn no_time_passed_means_no_rate() {
        let prev = [dev("eth0", 0, 0)];
        let cur = [dev("eth0", 10, 0)];
        assert_eq!(rx_rates(&interfaces(&prev, &cur, Some(0.0))), [("eth0", None)]);
    }

    #[test]
    fn pairing_prefers_the_same_position() {
        let prev = [1, 2, 1];
        assert!(std::ptr::eq(previous(&prev, 2, |&p| p == 1).expect("found"), &prev[2]));
        assert!(std::ptr::eq(previous(&prev, 1, |&p| p == 1).expect("found"), &prev[0]));
        assert_eq!(previous(&prev, 0, |&p| p == 3), None);
    }
}
