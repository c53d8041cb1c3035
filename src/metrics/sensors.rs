//! Temperature sensors, found once when the collector is created. \[io\]
//!
//! hwmon `temp*_input` files and thermal zones under a sysfs root, named as node_exporter names
//! them (`chip`, `sensor`, `label`), in natural order (`temp10` after `temp9`). The files are
//! kept open ([`ProcFile`]) and read on every collection by the collector.

use std::path::{Path, PathBuf};

use super::reader::ProcFile;
use super::SensorKind;

/// One temperature source found at start.
#[derive(Debug)]
pub(super) struct Sensor {
    pub(super) kind: SensorKind,
    pub(super) chip: String,
    pub(super) sensor: String,
    pub(super) label: Option<String>,
    /// The sensor's own critical and high limits, °C, when the driver gives them.
    pub(super) crit: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) file: ProcFile,
}

/// Finds hwmon temperature inputs and thermal zones under `sysfs`.
pub(super) fn discover(sysfs: &Path) -> Vec<Sensor> {
    let mut out = Vec::new();
    for dir in sorted_entries(&sysfs.join("class/hwmon")) {
        let chip = hwmon_chip_name(&dir);
        for file in sorted_entries(&dir) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(sensor) = name.strip_prefix("temp").and_then(|s| s.strip_suffix("_input"))
            else {
                continue;
            };
            let label = std::fs::read_to_string(dir.join(format!("temp{sensor}_label")))
                .ok()
                .map(|s| s.trim().to_string());
            let limit = |what: &str| read_limit(&dir.join(format!("temp{sensor}_{what}")));
            out.push(Sensor {
                kind: SensorKind::Hwmon,
                chip: chip.clone(),
                sensor: format!("temp{sensor}"),
                label,
                crit: limit("crit"),
                max: limit("max"),
                file: ProcFile::new(&file),
            });
        }
    }
    for dir in sorted_entries(&sysfs.join("class/thermal")) {
        let Some(zone) =
            dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("thermal_zone"))
        else {
            continue;
        };
        let kind = std::fs::read_to_string(dir.join("type"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let (crit, max) = trip_points(&dir);
        out.push(Sensor {
            kind: SensorKind::ThermalZone,
            chip: zone.to_string(),
            sensor: kind,
            label: None,
            crit,
            max,
            file: ProcFile::new(dir.join("temp")),
        });
    }
    out
}

/// A limit in millidegrees Celsius from `path`, in degrees; `None` when absent or not plausible
/// (some drivers write 0 or a raw register value where they have no limit).
fn read_limit(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    plausible_limit(text.trim().parse::<i64>().ok()?)
}

/// Degrees from millidegrees, kept only from 1 to 200 °C. \[pure\]
fn plausible_limit(milli: i64) -> Option<f64> {
    (1_000..=200_000).contains(&milli).then(|| milli as f64 / 1000.0)
}

/// A thermal zone's lowest `critical` and lowest `hot` trip points.
fn trip_points(zone: &Path) -> (Option<f64>, Option<f64>) {
    let (mut crit, mut hot): (Option<f64>, Option<f64>) = (None, None);
    for entry in sorted_entries(zone) {
        let Some(name) = entry.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(index) = name.strip_prefix("trip_point_").and_then(|n| n.strip_suffix("_type"))
        else {
            continue;
        };
        let kind = std::fs::read_to_string(&entry).unwrap_or_default();
        let slot = match kind.trim() {
            "critical" => &mut crit,
            "hot" => &mut hot,
            _ => continue,
        };
        if let Some(t) = read_limit(&zone.join(format!("trip_point_{index}_temp"))) {
            *slot = Some(slot.map_or(t, |s: f64| s.min(t)));
        }
    }
    (crit, hot)
}

/// node_exporter's `chip` label: `<parent dir>_<device>` of the resolved `device` link
/// (`platform_coretemp_0`), else the `name` file, else the hwmon directory name, each cleaned.
fn hwmon_chip_name(dir: &Path) -> String {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = clean_chip(dev.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        let parent = clean_chip(
            dev.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default(),
        );
        match (parent.is_empty(), name.is_empty()) {
            (false, false) => return format!("{parent}_{name}"),
            (true, false) => return name,
            _ => {}
        }
    }
    if let Ok(name) = std::fs::read_to_string(dir.join("name")) {
        let name = clean_chip(&name);
        if !name.is_empty() {
            return name;
        }
    }
    clean_chip(dir.file_name().and_then(|n| n.to_str()).unwrap_or_default())
}

/// node_exporter's cleaning of chip names: lowercase, `[^a-z0-9:_]` to `_`, `_` trimmed.
fn clean_chip(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    v.sort_by_key(|p| natural_key(p));
    v
}

/// Sorts `temp10` after `temp9`: by the name with its digits read as a number.
fn natural_key(p: &Path) -> (String, u64) {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    let letters: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    (letters, digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_are_cleaned() {
        assert_eq!(clean_chip("coretemp\n"), "coretemp");
        assert_eq!(clean_chip("coretemp.0"), "coretemp_0");
        assert_eq!(clean_chip("0000:00:18.3"), "0000:00:18_3");
        assert_eq!(clean_chip("--"), "");
    }

    #[test]
    fn limits_are_read_in_degrees_and_only_when_plausible() {
        assert_eq!(plausible_limit(105_000), Some(105.0));
        assert_eq!(plausible_limit(0), None);
        assert_eq!(plausible_limit(-273_000), None);
        assert_eq!(plausible_limit(255_000), None);
        let dir = tempfile::tempdir().unwrap();
        let hwmon = dir.path().join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&hwmon).unwrap();
        std::fs::write(hwmon.join("name"), "coretemp\n").unwrap();
        std::fs::write(hwmon.join("temp1_input"), "45000\n").unwrap();
        std::fs::write(hwmon.join("temp1_crit"), "100000\n").unwrap();
        std::fs::write(hwmon.join("temp1_max"), "84000\n").unwrap();
        std::fs::write(hwmon.join("temp2_input"), "45000\n").unwrap();
        std::fs::write(hwmon.join("temp2_max"), "0\n").unwrap();
        let zone = dir.path().join("class/thermal/thermal_zone0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("type"), "cpu-thermal\n").unwrap();
        std::fs::write(zone.join("temp"), "50000\n").unwrap();
        for (i, kind, milli) in [
            (0, "passive", 70_000),
            (1, "hot", 90_000),
            (2, "critical", 110_000),
            (3, "critical", 105_000),
        ] {
            std::fs::write(zone.join(format!("trip_point_{i}_type")), format!("{kind}\n")).unwrap();
            std::fs::write(zone.join(format!("trip_point_{i}_temp")), format!("{milli}\n"))
                .unwrap();
        }
        let sensors = discover(dir.path());
        let limits: Vec<(String, Option<f64>, Option<f64>)> =
            sensors.iter().map(|s| (s.sensor.clone(), s.crit, s.max)).collect();
        assert_eq!(
            limits,
            [
                ("temp1".to_string(), Some(100.0), Some(84.0)),
                ("temp2".to_string(), None, None),
                ("cpu-thermal".to_string(), Some(105.0), Some(90.0)),
            ]
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            PathBuf::from("temp10_input"),
            PathBuf::from("temp2_input"),
            PathBuf::from("temp1_input"),
        ];
        v.sort_by_key(|p| natural_key(p));
        assert_eq!(
            v,
            [
                PathBuf::from("temp1_input"),
                PathBuf::from("temp2_input"),
                PathBuf::from("temp10_input")
            ]
        );
    }
}
