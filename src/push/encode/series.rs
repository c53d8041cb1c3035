//! A snapshot's remote-write series, written as [`prometheus::walk`] tells them. \[pure\]
//!
//! The series are those of `/metrics`, one per sample, with the same names, labels and values:
//! the walk owns them, and this writer is one of its visitors (the other collects the owned
//! families that `/metrics` sorts). It borrows every name and label from the snapshot and writes
//! each series as it goes, so a record costs no allocation but its output buffer (and a few
//! numbers turned into text). Series come in the walk's order: family by family, samples in the
//! snapshot's order.
//!
//! Labels of a series: `__name__`, the sample's own labels, then the sink's tags and the
//! identity (`job`, `instance`) where the series has no label of that name, sorted by their
//! bytes; labels with an empty value are left out (by [`remote_write::push_series_with`]).
//! `tests::same_bytes_as_the_families_path` checks that merge against a plain reference over
//! the collected families; `tests/fixtures/encode/wide.series` holds the series of a snapshot
//! that takes every branch, as they were before the walk had one owner.
//!
//! What this module does not do: choose which tags a format can carry ([`super::check_tags`]),
//! compress or frame the record ([`super::record`]).

use super::remote_write;
use crate::metrics::encode::prometheus;
use crate::metrics::Snapshot;

/// A label pair.
type Label<'a> = (&'a str, &'a str);

/// Writes series into `out` at one timestamp, each with the extra labels where it has none of
/// that name.
struct Writer<'o, 'e> {
    out: &'o mut Vec<u8>,
    /// The tags and the identity, deduplicated (the first of a name wins) and sorted by bytes.
    extra: &'e [Label<'e>],
    timestamp_ms: i64,
    series: usize,
}

impl Writer<'_, '_> {
    /// One series: `own` holds the sample's labels, sorted by name, none named `__name__`.
    fn series(&mut self, name: &str, own: &[Label<'_>], value: f64) {
        debug_assert!(own.windows(2).all(|w| w[0].0 < w[1].0), "{name}: labels not sorted");
        let extra = self.extra;
        let each = |f: &mut dyn FnMut(&str, &str)| {
            // Merge three sorted runs: `__name__`, the own labels, the extra labels that the
            // series does not have.
            let mut own_run = std::iter::once(("__name__", name)).chain(own.iter().copied());
            let mut next_own = own_run.next();
            let mut extra_run = extra
                .iter()
                .copied()
                .filter(|(k, _)| *k != "__name__" && !own.iter().any(|(o, _)| o == k));
            let mut next_extra = extra_run.next();
            loop {
                match (next_own, next_extra) {
                    (Some(o), Some(e)) if e.0.as_bytes() < o.0.as_bytes() => {
                        f(e.0, e.1);
                        next_extra = extra_run.next();
                    }
                    (Some(o), _) => {
                        f(o.0, o.1);
                        next_own = own_run.next();
                    }
                    (None, Some(e)) => {
                        f(e.0, e.1);
                        next_extra = extra_run.next();
                    }
                    (None, None) => break,
                }
            }
        };
        remote_write::push_series_with(self.out, each, value, self.timestamp_ms);
        self.series += 1;
    }
}

impl prometheus::Visit for Writer<'_, '_> {
    fn family(&mut self, _name: &str, _help: std::fmt::Arguments<'_>, _kind: prometheus::Kind) {}

    fn sample(&mut self, name: &str, labels: &[Label<'_>], value: f64) {
        self.series(name, labels, value);
    }
}

/// Appends the series of `snapshot` to `out` as `WriteRequest` entries at `timestamp_ms`, with
/// `tags` then `identity` as extra labels (a tag wins over an identity label of its name; a
/// series' own label wins over both). Returns the number of series (one sample each).
pub(super) fn write(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    tags: &[(String, String)],
    identity: &[Label<'_>],
    timestamp_ms: i64,
) -> usize {
    let mut extra: Vec<Label<'_>> = Vec::with_capacity(tags.len() + identity.len());
    for (k, v) in tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(identity.iter().copied())
    {
        if !extra.iter().any(|(e, _)| *e == k) {
            extra.push((k, v));
        }
    }
    extra.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.reserve(estimate_len(snapshot, &extra));
    let mut w = Writer { out, extra: &extra, timestamp_ms, series: 0 };
    prometheus::walk(snapshot, &mut w);
    w.series
}

/// About the bytes of a snapshot's series, so that the output grows once at most.
fn estimate_len(s: &Snapshot, extra: &[Label<'_>]) -> usize {
    let cores = s.cpu.as_ref().map_or(0, |c| c.cores.len());
    let fields = s.memory.as_ref().map_or(0, |m| m.fields.len());
    let n = 16 + 14 * cores + fields + 22 * s.network.len() + 8 * s.filesystems.len();
    let extra_len: usize = extra.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    n * (110 + extra_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::{prometheus, sample_snapshot};
    use crate::metrics::{
        Address, Core, Filesystem, Frequency, FrequencySource, FsUsage, Interface, Link,
        Temperature,
    };
    use crate::push::encode::tests::tags;
    use crate::push::encode::{remote_write, DEFAULT_JOB};

    /// A plain reference for the label merge: the collected `/metrics` families, then one series
    /// per sample with the extra labels merged and sorted.
    fn via_families(out: &mut Vec<u8>, s: &Snapshot, tags: &[(String, String)]) -> usize {
        let ts = super::super::timestamp_ms(s.timestamp);
        let families = prometheus::families(s);
        let identity = [("job", DEFAULT_JOB), ("instance", s.hostname.as_str())];
        let mut n = 0;
        for family in &families {
            for sample in &family.samples {
                let mut labels: Vec<(&str, &str)> = vec![("__name__", family.name.as_str())];
                labels.extend(sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let extra = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(identity);
                for (key, value) in extra {
                    if !labels.iter().any(|(k, _)| *k == key) {
                        labels.push((key, value));
                    }
                }
                labels.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                remote_write::push_series(out, &labels, sample.value, ts);
                n += 1;
            }
        }
        n
    }

    fn direct(s: &Snapshot, tags: &[(String, String)]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let n = super::super::prometheus_record(&mut out, s, tags);
        (out, n)
    }

    /// A snapshot that takes the branches the sample does not: twelve cores (two-digit ids),
    /// cpuinfo and no frequencies, an interface without counters or rates, a link without
    /// operstate, an alias with a value, several disks, hwmon sensors without labels, NaN and
    /// infinite values.
    fn wide_snapshot() -> Snapshot {
        let mut s = sample_snapshot();
        let cpu = s.cpu.as_mut().expect("cpu");
        let template = cpu.cores[0].clone();
        cpu.cores = (0..12)
            .map(|i| {
                let mut c = Core { id: i * 3, ..template.clone() };
                c.times.user = f64::from(i) * 1.5;
                c.utilisation = if i == 5 { f64::NAN } else { f64::from(i) };
                c.frequency = match i % 3 {
                    0 => c.frequency,
                    1 => Frequency {
                        current: Some(1.2e9),
                        min: None,
                        max: None,
                        source: FrequencySource::Cpuinfo,
                    },
                    _ => Frequency::default(),
                };
                c
            })
            .collect();
        cpu.count = 12;
        cpu.utilisation = f64::INFINITY;
        s.load.as_mut().expect("load").five = f64::NEG_INFINITY;
        s.network.push(Interface {
            name: "veth, odd=\"name\"".to_string(),
            has_counters: false,
            addresses: vec![Address { ip: "2001:db8::7".parse().expect("ip"), prefix_len: 48 }],
            link: Link {
                operstate: Some("down".to_string()),
                ifalias: Some("uplink to the barn".to_string()),
                duplex: Some("full".to_string()),
                ..Link::default()
            },
            ..Interface::default()
        });
        s.network.push(Interface {
            name: "wg0".to_string(),
            has_counters: true,
            link: Link::default(),
            ..Interface::default()
        });
        for i in 0..4 {
            s.filesystems.push(Filesystem {
                mount_point: format!("/srv/disk{i}"),
                device: format!("/dev/sd{}1", char::from(b'b' + i)),
                fs_type: "xfs".to_string(),
                read_only: i % 2 == 1,
                usage: (i != 2).then_some(FsUsage {
                    total: 1 << 40,
                    free: u64::from(i) << 30,
                    available: u64::from(i) << 29,
                    used: u64::MAX,
                    files: 0,
                    files_free: 0,
                }),
            });
        }
        for i in 0..3 {
            s.temperatures.push(Temperature {
                kind: crate::metrics::SensorKind::Hwmon,
                chip: format!("nvme{i}"),
                sensor: "temp1".to_string(),
                label: (i == 1).then(|| "Composite".to_string()),
                celsius: if i == 2 { f64::NAN } else { 30.0 + f64::from(i) },
                crit: None,
                max: None,
            });
        }
        s.process.as_mut().expect("process").cpu_seconds = -0.0;
        s
    }

    fn snapshots() -> Vec<(&'static str, Snapshot)> {
        let mut no_time = sample_snapshot();
        no_time.timestamp = f64::NAN;
        no_time.hostname = String::new();
        vec![
            ("sample", sample_snapshot()),
            ("wide", wide_snapshot()),
            ("empty", Snapshot::default()),
            ("no time, no host", no_time),
        ]
    }

    fn tag_sets() -> Vec<Vec<(String, String)>> {
        vec![
            Vec::new(),
            tags(&[("site", "lab"), ("rack", "4")]),
            // Identity from tags; labels the series have of their own (they keep theirs); a key
            // that sorts before `__name__` (uppercase) and one between own labels.
            tags(&[("job", "node"), ("instance", "dev-7"), ("cpu", "x"), ("device", "y")]),
            tags(&[("Zone", "eu"), ("_x", "1"), ("mountpoint", "z"), ("label", "l"), ("n", "2")]),
        ]
    }

    #[test]
    fn same_bytes_as_the_families_path() {
        for (what, s) in snapshots() {
            for t in tag_sets() {
                let mut want = Vec::new();
                let n_want = via_families(&mut want, &s, &t);
                let (got, n_got) = direct(&s, &t);
                assert_eq!(n_got, n_want, "{what} {t:?}: series");
                if got != want {
                    let a = remote_write::decode(&got).expect("decode new");
                    let b = remote_write::decode(&want).expect("decode old");
                    let first = a.iter().zip(&b).position(|(x, y)| x != y);
                    panic!(
                        "{what} {t:?}: first difference at series {first:?}: {:?} / {:?}",
                        first.map(|i| &a[i]),
                        first.map(|i| &b[i])
                    );
                }
            }
        }
    }

    /// The wide snapshot's series in order, under the tag set that interleaves most, decoded
    /// one per line (made by the families path before the walk had one owner).
    #[test]
    fn golden_wide_series() {
        let t = &tag_sets()[3];
        let (bytes, n) = direct(&wide_snapshot(), t);
        let mut text = format!("# wide, tags {t:?}: {n} series, {} bytes\n", bytes.len());
        for ts in remote_write::decode(&bytes).expect("decode") {
            let labels: Vec<String> = ts.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            for (value, at) in &ts.samples {
                text.push_str(&format!("{} {value} {at}\n", labels.join(",")));
            }
        }
        expect_test::expect_file!["../../../tests/fixtures/encode/wide.series"].assert_eq(&text);
    }

    #[test]
    fn decoded_series_are_the_families_samples() {
        // Independently of byte order: every sample of `families` is one decoded series with its
        // labels (empty ones left out), the identity and its value's bits, NaN as Prometheus' own.
        let s = wide_snapshot();
        let (bytes, _) = direct(&s, &[]);
        let series = remote_write::decode(&bytes).expect("decode");
        let mut want = Vec::new();
        for f in prometheus::families(&s) {
            for sample in f.samples {
                let mut labels: Vec<(String, String)> = sample
                    .labels
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .chain([
                        ("__name__".to_string(), f.name.clone()),
                        ("job".to_string(), "pocketses".to_string()),
                        ("instance".to_string(), "pi-4".to_string()),
                    ])
                    .collect();
                labels.sort();
                want.push((labels, remote_write::value_bits(sample.value)));
            }
        }
        let got: Vec<(Vec<(String, String)>, u64)> = series
            .iter()
            .map(|ts| {
                assert_eq!(ts.samples.len(), 1);
                assert_eq!(ts.samples[0].1, 1_795_320_726_250);
                (ts.labels.clone(), ts.samples[0].0.to_bits())
            })
            .collect();
        assert_eq!(got, want);
        let nan = got.iter().filter(|(_, bits)| *bits == remote_write::NORMAL_NAN).count();
        assert_eq!(nan, 2, "the NaN utilisation and the NaN sensor");
        assert!(got.iter().any(|(_, bits)| *bits == f64::INFINITY.to_bits()));
        assert!(got.iter().any(|(_, bits)| *bits == f64::NEG_INFINITY.to_bits()));
        let per_core =
            got.iter().filter(|(l, _)| l.iter().any(|(k, v)| k == "cpu" && v == "30")).count();
        assert_eq!(per_core, 8 + 2 + 1 + 1, "core 30: modes, guest modes, cpuinfo, utilisation");
        let disk = got
            .iter()
            .filter(|(l, _)| l.iter().any(|(k, v)| k == "device" && v == "/dev/sdd1"))
            .count();
        assert_eq!(disk, 1, "a disk without figures has its error series only");
    }

    #[test]
    fn the_scratch_buffer_is_reused_and_cleared() {
        let s = sample_snapshot();
        let mut scratch = b"left over".to_vec();
        let a = crate::push::encode::record_with(
            crate::push::encode::SinkFormat::Prometheus,
            &s,
            &[],
            &mut scratch,
        )
        .expect("record");
        let b = crate::push::encode::record(crate::push::encode::SinkFormat::Prometheus, &s, &[])
            .expect("record");
        assert_eq!(a, b);
    }
}
