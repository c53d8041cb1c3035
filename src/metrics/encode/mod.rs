//! Encoders own the wire formats: `&Snapshot` in, `String` out. \[pure\]
//!
//! `json` is pocketses' own schema, `legacy` the exact shape of the original Python pocketses,
//! `prometheus` the text format 0.0.4 with node_exporter's names, `influx` the InfluxDB line
//! protocol. `float` holds the number formatting they share. No encoder does I/O.

pub mod float;
pub mod influx;
pub mod json;
mod jsonw;
pub mod legacy;
pub mod prometheus;

use crate::metrics::Snapshot;

/// The wire formats of pocketses: `pocketses metrics --format`, the stream's `publish.format`
/// (line formats only, see [`Format::is_line`]) and the HTTP endpoints. The one format enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// pocketses' JSON schema (one line).
    #[default]
    Json,
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// InfluxDB line protocol.
    Influx,
    /// The original pocketses' JSON shape (one line).
    Legacy,
}

/// Every format, in documentation order.
pub const FORMATS: &[Format] = &[Format::Json, Format::Prometheus, Format::Influx, Format::Legacy];

impl Format {
    /// The name users give (`json`, `prometheus`, `influx`, `legacy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Prometheus => "prometheus",
            Format::Influx => "influx",
            Format::Legacy => "legacy",
        }
    }

    /// Whether each snapshot is one JSON line, as the TCP stream needs (`json`, `legacy`).
    pub fn is_line(self) -> bool {
        matches!(self, Format::Json | Format::Legacy)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?} (want one of json, prometheus, influx, legacy)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    /// `v1` is accepted as the old name of `json` (the schema is `pocketses.metrics/v1`).
    fn from_str(name: &str) -> Result<Format, UnknownFormat> {
        match name {
            "json" | "v1" => Ok(Format::Json),
            "prometheus" => Ok(Format::Prometheus),
            "influx" => Ok(Format::Influx),
            "legacy" => Ok(Format::Legacy),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

/// Encodes `snapshot` in `format`.
pub fn encode(snapshot: &Snapshot, format: Format) -> String {
    match format {
        Format::Json => json::encode(snapshot),
        Format::Prometheus => prometheus::encode(snapshot),
        Format::Influx => influx::encode(snapshot),
        Format::Legacy => legacy::encode(snapshot),
    }
}

/// A fixed snapshot with every part filled in, for the encoders' golden tests.
#[cfg(test)]
pub(crate) fn sample_snapshot() -> Snapshot {
    use crate::metrics::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let times = |base: f64| CpuTimes {
        user: base,
        nice: 0.5,
        system: base / 4.0,
        idle: base * 10.0,
        iowait: 1.25,
        irq: 0.0,
        softirq: 0.75,
        steal: 0.01,
        guest: 0.0,
        guest_nice: 0.0,
    };
    let field =
        |name: &str, value: u64, bytes: bool| MeminfoField { name: name.to_string(), value, bytes };
    Snapshot {
        timestamp: 1_795_320_726.25,
        hostname: "pi-4".to_string(),
        interval: Some(60.0),
        cpu: Some(Cpu {
            count: 2,
            times: times(200.0),
            utilisation: 12.345,
            cores: vec![
                Core {
                    id: 0,
                    times: times(100.0),
                    utilisation: 20.0,
                    frequency: Frequency {
                        current: Some(1.5e9),
                        min: Some(6e8),
                        max: Some(2.4e9),
                        source: FrequencySource::Cpufreq,
                    },
                },
                Core {
                    id: 1,
                    times: times(100.0),
                    utilisation: 4.69,
                    frequency: Frequency {
                        current: Some(2.4e9),
                        min: Some(6e8),
                        max: Some(2.4e9),
                        source: FrequencySource::Cpufreq,
                    },
                },
            ],
        }),
        memory: Some(Memory {
            total: 8_255_242_240,
            available: 4_563_722_240,
            free: 456_372_224,
            used: 3_691_520_000,
            swap: Swap { total: 1_073_741_824, free: 805_306_368, used: 268_435_456 },
            fields: vec![
                field("MemTotal", 8_255_242_240, true),
                field("MemFree", 456_372_224, true),
                field("MemAvailable", 4_563_722_240, true),
                field("Active(anon)", 1_597_440, true),
                field("SwapTotal", 1_073_741_824, true),
                field("SwapFree", 805_306_368, true),
                field("HugePages_Total", 0, false),
            ],
        }),
        network: vec![
            Interface {
                name: "lo".to_string(),
                has_counters: true,
                rx: NetCounters { bytes: 3193, packets: 29, errs: 0, drop: 0 },
                tx: NetCounters { bytes: 3193, packets: 29, errs: 0, drop: 0 },
                rx_rate: Some(NetRates { bytes: 53.2, packets: 0.5, errs: 0.0, drop: 0.0 }),
                tx_rate: Some(NetRates { bytes: 53.2, packets: 0.5, errs: 0.0, drop: 0.0 }),
                addresses: vec![
                    Address { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), prefix_len: 8 },
                    Address { ip: IpAddr::V6(Ipv6Addr::LOCALHOST), prefix_len: 128 },
                ],
                link: Link {
                    address: Some("00:00:00:00:00:00".to_string()),
                    broadcast: Some("00:00:00:00:00:00".to_string()),
                    operstate: Some("unknown".to_string()),
                    duplex: None,
                    ifalias: Some(String::new()),
                },
            },
            Interface {
                name: "wlan0".to_string(),
                has_counters: true,
                rx: NetCounters { bytes: 139_507_262, packets: 4393, errs: 1, drop: 2 },
                tx: NetCounters { bytes: 263_056, packets: 3090, errs: 0, drop: 3 },
                rx_rate: Some(NetRates { bytes: 2_325_121.0, packets: 73.2, errs: 0.0, drop: 0.0 }),
                tx_rate: Some(NetRates { bytes: 4384.25, packets: 51.5, errs: 0.0, drop: 0.05 }),
                addresses: vec![
                    Address { ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), prefix_len: 24 },
                    Address { ip: "fe80::1".parse().expect("ip"), prefix_len: 64 },
                ],
                link: Link {
                    address: Some("dc:a6:32:01:02:03".to_string()),
                    broadcast: Some("ff:ff:ff:ff:ff:ff".to_string()),
                    operstate: Some("up".to_string()),
                    duplex: None,
                    ifalias: Some(String::new()),
                },
            },
            Interface { name: "eth0".to_string(), has_counters: true, ..Interface::default() },
        ],
        load: Some(LoadAverage { one: 1.17, five: 0.53, fifteen: 0.23 }),
        uptime: Some(641.06),
        boot_time: Some(1_795_320_085),
        filesystems: vec![
            Filesystem {
                mount_point: "/".to_string(),
                device: "/dev/mmcblk0p2".to_string(),
                fs_type: "ext4".to_string(),
                read_only: false,
                usage: Some(FsUsage {
                    total: 31_000_000_000,
                    free: 20_000_000_000,
                    available: 18_500_000_000,
                    used: 11_000_000_000,
                    files: 1_900_000,
                    files_free: 1_700_000,
                }),
            },
            Filesystem {
                mount_point: "/media/my \"usb\"".to_string(),
                device: "/dev/sda1".to_string(),
                fs_type: "vfat".to_string(),
                read_only: true,
                usage: None,
            },
        ],
        temperatures: vec![
            Temperature {
                kind: SensorKind::Hwmon,
                chip: "platform_cpu_thermal".to_string(),
                sensor: "temp1".to_string(),
                label: Some("CPU".to_string()),
                celsius: 47.236,
                crit: None,
                max: None,
            },
            Temperature {
                kind: SensorKind::ThermalZone,
                chip: "0".to_string(),
                sensor: "cpu-thermal".to_string(),
                label: None,
                celsius: 47.2,
                crit: None,
                max: None,
            },
        ],
        uname: Some(Uname {
            sysname: "Linux".to_string(),
            nodename: "pi-4".to_string(),
            release: "5.15.0-1034-raspi".to_string(),
            version: "#37-Ubuntu SMP PREEMPT".to_string(),
            machine: "aarch64".to_string(),
            domainname: "(none)".to_string(),
        }),
        process: Some(Process {
            cpu_seconds: 0.42,
            resident_bytes: 3_145_728,
            virtual_bytes: 12_582_912,
            start_time: 1_795_320_100.5,
            threads: 3,
        }),
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn names_round_trip_and_v1_is_json() {
        for f in FORMATS {
            assert_eq!(f.as_str().parse::<Format>(), Ok(*f));
        }
        assert_eq!("v1".parse::<Format>(), Ok(Format::Json));
        assert!("xml".parse::<Format>().is_err());
        let lines: Vec<_> = FORMATS.iter().filter(|f| f.is_line()).collect();
        assert_eq!(lines, [&Format::Json, &Format::Legacy]);
    }
}
