//! Collectors as units: each group of a snapshot (cpu, memory, network, filesystems,
//! temperatures, load) can be turned off (`collectors.NAME.enabled=false`) or given its own,
//! longer interval (`collectors.NAME.interval`). \[pure\]: snapshots and times in, snapshots out.
//!
//! The collector still reads the host every `interval`; [`Units::apply`] then leaves out of a
//! snapshot the groups that are off, and the groups whose own interval has not passed since
//! they were last kept. A group is in a snapshot only when it is fresh, so a sink sends a
//! temperature every five minutes with `collectors.temperatures.interval=300`, never a repeat
//! of an old reading. Rates and utilisation cover the collector's last `interval`.

use std::collections::BTreeMap;

use super::Snapshot;
use crate::config::CollectorConfig;

/// The collector groups, in snapshot order (the names `collectors.NAME.*` takes).
pub const GROUPS: [Group; 6] = [
    Group::Cpu,
    Group::Memory,
    Group::Network,
    Group::Filesystems,
    Group::Temperatures,
    Group::Load,
];

/// One collector group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Processors: times, utilisation, frequencies.
    Cpu,
    /// Memory and swap.
    Memory,
    /// Network interfaces: counters, rates, addresses.
    Network,
    /// Mounted filesystems and their usage.
    Filesystems,
    /// Temperature sensors.
    Temperatures,
    /// Load averages.
    Load,
}

impl Group {
    /// The group's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Cpu => "cpu",
            Group::Memory => "memory",
            Group::Network => "network",
            Group::Filesystems => "filesystems",
            Group::Temperatures => "temperatures",
            Group::Load => "load",
        }
    }

    /// The group named `name`.
    pub fn parse(name: &str) -> Option<Group> {
        GROUPS.into_iter().find(|g| g.as_str() == name)
    }

    /// What the group reads.
    pub fn describe(self) -> &'static str {
        match self {
            Group::Cpu => {
                "processors: time counters, utilisation, frequencies (/proc/stat, cpufreq)"
            }
            Group::Memory => "memory and swap (/proc/meminfo)",
            Group::Network => "interfaces: counters, rates, addresses (/proc/net/dev, getifaddrs)",
            Group::Filesystems => "mounted filesystems and their usage (mountinfo, statvfs)",
            Group::Temperatures => "temperature sensors (hwmon, thermal zones)",
            Group::Load => "load averages (/proc/loadavg)",
        }
    }

    /// Whether `snapshot` has a reading of the group.
    pub fn present(self, s: &Snapshot) -> bool {
        match self {
            Group::Cpu => s.cpu.is_some(),
            Group::Memory => s.memory.is_some(),
            Group::Network => !s.network.is_empty(),
            Group::Filesystems => !s.filesystems.is_empty(),
            Group::Temperatures => !s.temperatures.is_empty(),
            Group::Load => s.load.is_some(),
        }
    }

    /// Leaves the group out of `snapshot`.
    pub fn clear(self, s: &mut Snapshot) {
        match self {
            Group::Cpu => s.cpu = None,
            Group::Memory => s.memory = None,
            Group::Network => s.network.clear(),
            Group::Filesystems => s.filesystems.clear(),
            Group::Temperatures => s.temperatures.clear(),
            Group::Load => s.load = None,
        }
    }
}

/// When each group was last kept in a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    kept: BTreeMap<Group, f64>,
}

impl Units {
    /// Leaves out of `snapshot` the groups `config` turns off and those whose own interval has
    /// not passed since they were last kept (by the snapshots' own times; a clock that went back
    /// keeps the group).
    pub fn apply(&mut self, snapshot: &mut Snapshot, config: &BTreeMap<String, CollectorConfig>) {
        for group in GROUPS {
            let Some(unit) = config.get(group.as_str()) else {
                continue;
            };
            if unit.enabled == Some(false) {
                group.clear(snapshot);
                continue;
            }
            let Some(every) = unit.interval else { continue };
            // Half a second of slack: collections land a little before or after their second.
            let due = self.kept.get(&group).is_none_or(|last| {
                snapshot.timestamp - last >= f64::from(every) - 0.5 || snapshot.timestamp < *last
            });
            if due {
                self.kept.insert(group, snapshot.timestamp);
            } else {
                group.clear(snapshot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;

    fn config(entries: &[(&str, Option<u32>, Option<bool>)]) -> BTreeMap<String, CollectorConfig> {
        entries
            .iter()
            .map(|(n, interval, enabled)| {
                (n.to_string(), CollectorConfig { interval: *interval, enabled: *enabled })
            })
            .collect()
    }

    fn at(t: f64) -> Snapshot {
        Snapshot { timestamp: t, ..sample_snapshot() }
    }

    #[test]
    fn names_round_trip_and_match_the_configuration() {
        for g in GROUPS {
            assert_eq!(Group::parse(g.as_str()), Some(g));
        }
        let names: Vec<&str> = GROUPS.iter().map(|g| g.as_str()).collect();
        assert_eq!(names, crate::config::COLLECTORS);
        assert_eq!(Group::parse("gpu"), None);
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let mut s = at(10.0);
        Units::default().apply(&mut s, &BTreeMap::new());
        assert_eq!(s, at(10.0));
    }

    #[test]
    fn a_disabled_group_is_left_out_of_every_snapshot() {
        let c = config(&[("temperatures", None, Some(false)), ("cpu", None, Some(true))]);
        let mut units = Units::default();
        for t in [10.0, 20.0] {
            let mut s = at(t);
            units.apply(&mut s, &c);
            assert!(s.temperatures.is_empty());
            assert!(s.cpu.is_some() && s.memory.is_some());
        }
    }

    #[test]
    fn a_slower_group_is_kept_only_when_its_interval_passed() {
        let c = config(&[("filesystems", Some(30), None)]);
        let mut units = Units::default();
        let kept: Vec<bool> = [0.0, 10.0, 20.0, 29.6, 40.0, 59.0, 60.1]
            .into_iter()
            .map(|t| {
                let mut s = at(t);
                units.apply(&mut s, &c);
                assert!(s.cpu.is_some(), "other groups every time");
                Group::Filesystems.present(&s)
            })
            .collect();
        assert_eq!(kept, [true, false, false, true, false, false, true]);
        // The clock went back: kept again rather than held back for a long time.
        let mut s = at(5.0);
        units.apply(&mut s, &c);
        assert!(Group::Filesystems.present(&s));
    }
}
