//! `pocketses status [--json]`: snapd, model, snap, daemon and configuration state.
//!
//! Gathering is I/O ([`gather`]); the [`Report`] and its text rendering are pure.
//! Everything snapd cannot answer becomes a line saying so; the command still prints the
//! configuration (the daemon's, snapd's, or the defaults) and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::config::{self, Loaded};
use crate::control;
use crate::remodel::drive::{self, Record};
use crate::snapd::conf::{ConfigSource, Via};
use crate::snapd::{self, Client, SNAP_NAME};

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// `--state-dir`.
    #[command(flatten)]
    pub state_dir: crate::paths::StateDirArg,
}

/// What snapd says about the system.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct System {
    /// snapd version.
    pub version: String,
    /// `classic` or `core`.
    pub kind: String,
    /// `strict` or `partial`.
    pub confinement: String,
    /// System mode (`run`, …), when snapd reports it.
    pub system_mode: String,
    /// os-release id and version.
    pub os: String,
}

/// The device's model and serial.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Model {
    /// brand-id.
    pub brand: String,
    /// model name.
    pub model: String,
    /// grade (UC20+; empty for older models).
    pub grade: String,
    /// Serial, when the device is registered.
    pub serial: Option<String>,
    /// `rest` or `snapctl` (which cannot tell the serial).
    pub via: String,
}

/// The model in an assertion's text (as `snapctl model --assertion` prints it). \[pure\]
///
/// Only the headers are read (snapd already checked the signature of the device's model).
///
/// # Errors
/// When the header block does not parse, in the decoder's words.
pub fn model_from_text(text: &str) -> Result<Model, String> {
    let head = text.split_once("\n\n").map_or(text, |(head, _)| head);
    let headers = crate::assertion::parse::parse_headers(head.as_bytes())
        .map_err(|err| format!("cannot read model assertion: {err}"))?;
    let model = crate::assertion::model::view(&headers);
    Ok(Model {
        brand: model.brand_id,
        model: model.model,
        grade: model.grade,
        serial: None,
        via: "snapctl".to_string(),
    })
}

/// This snap as snapd sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ThisSnap {
    /// Revision.
    pub revision: String,
    /// Tracking channel (empty for local installs).
    pub channel: String,
    /// Confinement.
    pub confinement: String,
    /// Version.
    pub version: String,
}

pub use crate::control::ConfigValue;

/// Everything `status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// snapd's socket.
    pub snapd_socket: String,
    /// Why snapd could not be asked, when it could not.
    pub snapd_error: Option<String>,
    /// The system.
    pub system: Option<System>,
    /// snapd's pending restart (`maintenance`), when it announces one.
    pub maintenance: Option<String>,
    /// Model and serial.
    pub model: Option<Model>,
    /// Model problem (no model yet, …).
    pub model_error: Option<String>,
    /// This snap.
    pub snap: Option<ThisSnap>,
    /// Snap problem (not installed, …).
    pub snap_error: Option<String>,
    /// Connected plugs of pocketses (`plug → snap:slot`).
    pub connections: Vec<String>,
    /// Pending snapd warnings.
    pub warnings: usize,
    /// The daemon's `state` reply, when it runs.
    pub daemon: Option<control::State>,
    /// Why the daemon could not be asked.
    pub daemon_error: Option<String>,
    /// Where the configuration shown came from (`daemon`, `rest`, `snapctl`, `defaults`).
    pub config_from: String,
    /// Effective configuration.
    pub config: Vec<ConfigValue>,
    /// Keys in snapd that pocketses does not use.
    pub unknown_keys: Vec<String>,
    /// Configuration problems (stored values that do not validate).
    pub config_problems: Vec<String>,
    /// The last remodel: its record (`remodel.json`), with the change's status when snapd answers.
    pub remodel: Option<Record>,
    /// Why the remodel record could not be read.
    pub remodel_error: Option<String>,
}

/// Runs the command.
///
/// # Errors
/// When the runtime cannot start; snapd and daemon failures are part of the report.
pub fn main(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = Client::from_env().with_timeout(Duration::from_secs(10));
    // A current-thread runtime: still one thread, and the paths computed below read it.
    args.state_dir.apply();
    let report =
        runtime.block_on(gather(&client, ConfigSource::from_env(), Some(control::socket_path())));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("cannot encode status")?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn header(headers: &snapd::Headers, key: &str) -> String {
    headers.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Asks snapd and the daemon; never fails.
pub async fn gather(
    client: &Client,
    source: ConfigSource,
    control_socket: Option<PathBuf>,
) -> Report {
    let mut report = Report { snapd_socket: client.target(), ..Report::default() };
    let info = client.call(snapd::Request::get("/v2/system-info")).await.and_then(|env| {
        report.maintenance =
            env.maintenance.as_ref().map(|m| format!("{} ({})", m.message, m.kind));
        env.into_sync::<snapd::SystemInfo>()
    });
    match info {
        Ok(info) => {
            report.system = Some(System {
                version: info.version,
                kind: if info.on_classic { "classic" } else { "core" }.to_string(),
                confinement: info.confinement,
                system_mode: info.system_mode,
                os: format!("{} {}", info.os_release.id, info.os_release.version_id)
                    .trim()
                    .to_string(),
            });
        }
        Err(err) => {
            report.snapd_error = Some(if err.is_permission_denied() && source.in_snap() {
                format!(
                    "snapd is not reachable at {} (connect pocketses:snapd-control for the full status)",
                    client.target()
                )
            } else if err.is_unreachable() {
                format!("snapd is not reachable at {}", client.target())
            } else {
                format!("cannot get system information: {err}")
            });
        }
    }
    if report.system.is_some() {
        match client.model_headers(false).await {
            Ok(h) => {
                let serial = match client.model_headers(true).await {
                    Ok(s) => Some(header(&s, "serial")),
                    Err(_) => None,
                };
                report.model = Some(Model {
                    brand: header(&h, "brand-id"),
                    model: header(&h, "model"),
                    grade: header(&h, "grade"),
                    serial,
                    via: "rest".to_string(),
                });
            }
            Err(err) => report.model_error = Some(format!("cannot get model: {err}")),
        }
        match client.snap(SNAP_NAME).await {
            Ok(s) => {
                report.snap = Some(ThisSnap {
                    revision: s.revision,
                    channel: s.tracking_channel,
                    confinement: s.confinement,
                    version: s.version,
                });
            }
            Err(err) if err.is_kind(snapd::kind::SNAP_NOT_FOUND) => {
                report.snap_error = Some(format!("snap {SNAP_NAME:?} is not installed"));
            }
            Err(err) => report.snap_error = Some(format!("cannot get snap: {err}")),
        }
        if let Ok(conns) = client.connections(Some(SNAP_NAME)).await {
            report.connections = conns
                .established
                .iter()
                .filter(|c| c.plug.snap == SNAP_NAME)
                .map(|c| format!("{} → {}:{}", c.plug.plug, c.slot.snap, c.slot.slot))
                .collect();
        }
        report.warnings = client.warnings(false).await.map(|w| w.len()).unwrap_or(0);
    }
    // A strict snap without snapd-control still has snapctl for the model.
    if report.system.is_none() {
        if let Some(ctl) = source.snapctl() {
            match ctl.model().await {
                Ok(text) => match model_from_text(&text) {
                    Ok(model) => report.model = Some(model),
                    Err(err) => report.model_error = Some(err),
                },
                Err(err) => report.model_error = Some(format!("cannot get model: {err}")),
            }
        }
    }
    match &control_socket {
        Some(path) => {
            match control::call(path, &control::Request::State, Duration::from_secs(5)).await {
                Ok(state) => match serde_json::from_value::<control::State>(state) {
                    Ok(state) => report.daemon = Some(state),
                    Err(err) => {
                        report.daemon_error =
                            Some(format!("cannot read the daemon's state: {err}"));
                    }
                },
                Err(err) => report.daemon_error = Some(err.to_string()),
            }
        }
        None => report.daemon_error = Some("no control socket".to_string()),
    }
    fill_config(&mut report, &source).await;
    match remodel(client, report.system.is_some()).await {
        Ok(record) => report.remodel = record,
        Err(err) => report.remodel_error = Some(format!("{err:#}")),
    }
    report
}

async fn fill_config(report: &mut Report, source: &ConfigSource) {
    // The daemon's view is the effective one (it includes flags); else read snapd like the daemon would.
    if let Some(state) = &report.daemon {
        report.config_from = "daemon".to_string();
        report.config = state.config.clone();
        report.unknown_keys = state.unknown_keys.clone();
        // A port asked as 0 is whatever the kernel picked: show the real one.
        if let Some(listening) = state.listening {
            for value in &mut report.config {
                let bound = match value.key.as_str() {
                    "port" => listening.tcp,
                    "http.port" => listening.http,
                    _ => None,
                };
                if let Some(addr) = bound.filter(|_| value.value == 0) {
                    value.value = Value::from(addr.port());
                }
            }
        }
        return;
    }
    let mut loaded = Loaded::default();
    report.config_from = "defaults".to_string();
    let via = if report.system.is_some() {
        Some(Via::Rest)
    } else if source.in_snap() {
        Some(Via::Snapctl)
    } else {
        None
    };
    if let Some(via) = via {
        match source.document(via).await {
            Ok(doc) => match config::from_document(&doc) {
                Ok(l) => {
                    loaded = l;
                    report.config_from = via.as_str().to_string();
                }
                Err(problems) => {
                    report.config_problems = problems.iter().map(ToString::to_string).collect()
                }
            },
            Err(err) if err.is_kind(snapd::kind::SNAP_NOT_FOUND) => {}
            Err(err) => report.config_problems.push(format!("cannot read configuration: {err}")),
        }
    }
    report.config = loaded
        .effective()
        .into_iter()
        .map(|(key, value, source)| ConfigValue { key, value, source })
        .collect();
    report.unknown_keys = loaded.unknown;
}

/// The record `pocketses remodel` leaves ([`drive::record_path`]), with the change's current status.
async fn remodel(client: &Client, snapd_up: bool) -> anyhow::Result<Option<Record>> {
    let Some(mut record) = drive::load_record(&drive::record_path())? else { return Ok(None) };
    if snapd_up {
        if let Ok(change) = client.change(&record.change).await {
            record.observe(&change);
        }
    }
    Ok(Some(record))
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text form. \[pure\]
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: String| out.push_str(&format!("{label:<13}{text}\n"));
    match (&r.system, &r.snapd_error) {
        (Some(s), _) => {
            let mode = if s.system_mode.is_empty() {
                String::new()
            } else {
                format!(", system mode {}", s.system_mode)
            };
            line(
                "snapd:",
                format!(
                    "{} ({}, {} confinement{mode}; {})",
                    s.version, s.kind, s.confinement, s.os
                ),
            );
        }
        (None, Some(err)) => line("snapd:", err.clone()),
        (None, None) => line("snapd:", "unknown".to_string()),
    }
    if let Some(m) = &r.maintenance {
        line("maintenance:", m.clone());
    }
    if let Some(m) = &r.model {
        let grade =
            if m.grade.is_empty() { String::new() } else { format!(" (grade {})", m.grade) };
        line("model:", format!("{}/{}{grade}", m.brand, m.model));
        line(
            "serial:",
            m.serial.clone().unwrap_or_else(|| "- (device not registered yet)".to_string()),
        );
    } else if let Some(err) = &r.model_error {
        line("model:", err.clone());
    }
    if let Some(s) = &r.snap {
        let channel = if s.channel.is_empty() { "-" } else { s.channel.as_str() };
        line(
            "snap:",
            format!(
                "{SNAP_NAME} {} revision {}, channel {channel}, {} confinement",
                s.version, s.revision, s.confinement
            ),
        );
    } else if let Some(err) = &r.snap_error {
        line("snap:", err.clone());
    }
    if r.system.is_some() {
        line(
            "connections:",
            if r.connections.is_empty() { "none".to_string() } else { r.connections.join(", ") },
        );
        if r.warnings > 0 {
            line("warnings:", format!("{} (see snap warnings)", r.warnings));
        }
    }
    match (&r.daemon, &r.daemon_error) {
        (Some(d), _) => {
            let via = match d.config_via {
                Some(via) => format!("config from snapd via {}", via.as_str()),
                None => "config from flags and defaults, not snapd".to_string(),
            };
            line("daemon:", format!("running (pid {}, {via}, {} reloads)", d.pid, d.reloads));
            if let Some(listening) = d.listening {
                line("", format!("listening {listening}"));
            }
            for text in &d.exposure {
                line("warning:", text.clone());
            }
            if let Some(err) = &d.last_error {
                line("", format!("last configuration error: {err}"));
            }
            let now_ms = crate::spool::millis(std::time::SystemTime::now());
            for sink in &d.push {
                line("push:", crate::push::sink::summary(sink, now_ms));
                if sink.state != "ok" {
                    if let Some(err) = &sink.last_error {
                        line("", err.clone());
                    }
                }
            }
            for spoke in &d.hub {
                line("spoke:", crate::hub::spoke::summary(spoke, now_ms));
            }
        }
        (None, Some(err)) => line("daemon:", err.clone()),
        (None, None) => line("daemon:", "unknown".to_string()),
    }
    if let Some(rm) = &r.remodel {
        let status = if rm.status.is_empty() { "unknown" } else { rm.status.as_str() };
        line("remodel:", format!("change {} {status}", rm.change));
    } else if let Some(err) = &r.remodel_error {
        line("remodel:", err.clone());
    }
    line("config:", format!("(from {})", r.config_from));
    for v in &r.config {
        line("", format!("{:<25} {:<12} {}", v.key, show(&v.value), v.source.as_str()));
    }
    if !r.unknown_keys.is_empty() {
        line("unused keys:", r.unknown_keys.join(", "));
    }
    for problem in &r.config_problems {
        line("problem:", problem.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_from_an_assertion_text() {
        let m = model_from_text(
            "type: model\nauthority-id: acme\nseries: 16\nbrand-id: acme\nmodel: box\narchitecture: amd64\nbase: core22\ngrade: dangerous\nsnaps:\n  -\n    name: pc\n    type: gadget\ntimestamp: 2024-01-05T09:00:00Z\nsign-key-sha3-384: x\n\nAAAA\n",
        )
        .expect("model");
        assert_eq!(
            (m.brand.as_str(), m.model.as_str(), m.grade.as_str()),
            ("acme", "box", "dangerous")
        );
        assert_eq!(m.via, "snapctl");
        let err = model_from_text("brand-id acme\nmodel: box\n").expect_err("not an assertion");
        assert!(err.starts_with("cannot read model assertion: "), "{err}");
    }

    #[test]
    fn renders_unreachable_snapd_with_defaults() {
        let report = Report {
            snapd_socket: "/run/snapd.socket".into(),
            snapd_error: Some("snapd is not reachable at /run/snapd.socket".into()),
            daemon_error: Some("the daemon is not running (no control socket at /x)".into()),
            config_from: "defaults".into(),
            config: vec![ConfigValue {
                key: "interval".into(),
                value: json!(60),
                source: config::Source::Default,
            }],
            ..Report::default()
        };
        let text = render(&report);
        assert_eq!(
            text,
            "snapd:       snapd is not reachable at /run/snapd.socket\n\
             daemon:      the daemon is not running (no control socket at /x)\n\
             config:      (from defaults)\n\
             \x20            interval                  60           default\n"
        );
    }

    #[test]
    fn renders_full_report() {
        let report = Report {
            system: Some(System {
                version: "2.65".into(),
                kind: "core".into(),
                confinement: "strict".into(),
                system_mode: "run".into(),
                os: "ubuntu-core 22".into(),
            }),
            model: Some(Model {
                brand: "brand".into(),
                model: "pc".into(),
                grade: "dangerous".into(),
                serial: None,
                via: "rest".into(),
            }),
            snap: Some(ThisSnap {
                revision: "x1".into(),
                channel: String::new(),
                confinement: "strict".into(),
                version: "0.1.0".into(),
            }),
            connections: vec!["snapd-control → snapd:snapd-control".into()],
            daemon: Some(control::State {
                pid: 7,
                config_via: Some(Via::Rest),
                reloads: 2,
                listening: Some(control::Listening {
                    tcp: Some("0.0.0.0:8888".parse().unwrap()),
                    http: None,
                }),
                ..control::State::default()
            }),
            remodel: Some(Record {
                change: "42".into(),
                summary: String::new(),
                target: String::new(),
                status: "Doing".into(),
                ready: false,
                err: None,
            }),
            config_from: "daemon".into(),
            unknown_keys: vec!["colour".into()],
            ..Report::default()
        };
        let text = render(&report);
        for want in [
            "snapd:       2.65 (core, strict confinement, system mode run; ubuntu-core 22)",
            "model:       brand/pc (grade dangerous)",
            "serial:      - (device not registered yet)",
            "snap:        pocketses 0.1.0 revision x1, channel -, strict confinement",
            "connections: snapd-control → snapd:snapd-control",
            "daemon:      running (pid 7, config from snapd via rest, 2 reloads)",
            "             listening tcp=0.0.0.0:8888 http=off",
            "remodel:     change 42 Doing",
            "unused keys: colour",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
