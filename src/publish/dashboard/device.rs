//! The device's facts for the dashboard: model, serial, and the snaps with their health. \[io\]
//!
//! The model and serial are asked of snapd when the daemon starts and then every [`REFRESH`],
//! never per page: a page shows what the last look found. With `snapd-control` the REST API
//! gives them; without it (a strict snap's default), `snapctl model` still gives the model, and
//! the page says what is missing and why. Failures are said on the page, not in the log: the
//! daemon has other places that say snapd is away.
//!
//! The snaps are not asked for here: `GET /v2/snaps` is polled once, by the checks' poller
//! (`checks::daemon::poll_snapd`), which hands each list to the board ([`snaps_from`],
//! [`super::Board::set_snaps`]) as well as to the `snaps` check.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Device, SnapHealth};
use crate::publish::Hub;
use crate::snapd::conf::ConfigSource;
use crate::snapd::Headers;

/// How often the facts are read again; snaps and their health change rarely.
pub const REFRESH: Duration = Duration::from_secs(60);
/// The longest one look may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the facts now and every [`REFRESH`] until `shutdown`.
pub async fn follow(hub: Hub, shutdown: CancellationToken) {
    let source = ConfigSource::from_env();
    loop {
        let device = tokio::select! {
            _ = shutdown.cancelled() => return,
            res = tokio::time::timeout(TIMEOUT, look(&source)) => res.unwrap_or_else(|_| Device {
                problem: Some("snapd did not answer in time".to_string()),
                ..hub.board().device().as_ref().clone()
            }),
        };
        // The snaps are the poller's; keep the last list it gave.
        let snaps = hub.board().device().snaps.clone();
        hub.board().set_device(Device { snaps, ..device });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

/// One look at snapd: the model and serial (the snaps come from the poller).
pub async fn look(source: &ConfigSource) -> Device {
    let client = source.rest();
    match client.model_headers(false).await {
        Ok(model) => {
            let serial = client.model_headers(true).await.ok().map(|h| header(&h, "serial"));
            from_headers(&model, serial)
        }
        Err(rest_err) => {
            let why = if rest_err.is_permission_denied() && source.in_snap() {
                "connect pocketses:snapd-control to see the serial and the snaps".to_string()
            } else if rest_err.is_unreachable() {
                format!("snapd is not reachable at {}", client.target())
            } else {
                format!("cannot get model: {rest_err}")
            };
            let Some(ctl) = source.snapctl() else {
                return Device { problem: Some(why), ..Device::default() };
            };
            match ctl.model().await {
                Ok(text) => match model_from_text(&text) {
                    Some(mut device) => {
                        device.problem = Some(why);
                        device
                    }
                    None => Device {
                        problem: Some("cannot read model assertion".to_string()),
                        ..Device::default()
                    },
                },
                Err(err) => Device {
                    problem: Some(format!("cannot get model: {err}")),
                    ..Device::default()
                },
            }
        }
    }
}

/// The page's view of the snaps of a `GET /v2/snaps` result, by name. \[pure\]
pub fn snaps_from(list: &[crate::snapd::Snap]) -> Vec<SnapHealth> {
    let mut snaps: Vec<SnapHealth> = list
        .iter()
        .map(|snap| SnapHealth {
            name: snap.name.clone(),
            version: snap.version.clone(),
            revision: snap.revision.clone(),
            health: snap.health.as_ref().map(|h| super::Health {
                status: h.status.clone(),
                message: h.message.clone(),
                code: h.code.clone(),
            }),
        })
        .collect();
    snaps.sort_by(|a, b| a.name.cmp(&b.name));
    snaps
}

fn header(headers: &Headers, key: &str) -> String {
    headers.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The model part of the facts from the model assertion's headers. \[pure\]
pub fn from_headers(model: &Headers, serial: Option<String>) -> Device {
    Device {
        brand: header(model, "brand-id"),
        model: header(model, "model"),
        grade: header(model, "grade"),
        // snapd omits `revision` when it is 0.
        revision: match header(model, "revision") {
            r if r.is_empty() => "0".to_string(),
            r => r,
        },
        serial: serial.filter(|s| !s.is_empty()),
        ..Device::default()
    }
}

/// The model part of the facts from an assertion's text (`snapctl model --assertion`). \[pure\]
pub fn model_from_text(text: &str) -> Option<Device> {
    let head = text.split_once("\n\n").map_or(text, |(head, _)| head);
    let headers = crate::assertion::parse::parse_headers(head.as_bytes()).ok()?;
    let model = crate::assertion::model::view(&headers);
    let revision = headers.get_str("revision").unwrap_or("0").to_string();
    Some(Device {
        brand: model.brand_id,
        model: model.model,
        grade: model.grade,
        revision,
        ..Device::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snaps_are_sorted_with_their_health() {
        let list: Vec<crate::snapd::Snap> = serde_json::from_value(json!([
            {"name": "zeta", "version": "1", "revision": "2", "health": {"revision": "2", "timestamp": "2024-01-01T00:00:00Z", "status": "blocked", "message": "needs a key", "code": "no-key"}},
            {"name": "alpha", "version": "3", "revision": "x1"},
        ]))
        .unwrap();
        let snaps = snaps_from(&list);
        let names: Vec<&str> = snaps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!((snaps[0].version.as_str(), snaps[0].revision.as_str()), ("3", "x1"));
        assert_eq!(snaps[0].health, None);
        let health = snaps[1].health.as_ref().unwrap();
        assert_eq!((health.status.as_str(), health.code.as_str()), ("blocked", "no-key"));
        assert!(snaps_from(&[]).is_empty());
    }

    #[test]
    fn model_headers_make_the_facts() {
        let headers: Headers = serde_json::from_value(
            json!({"brand-id": "acme", "model": "pc", "grade": "dangerous"}),
        )
        .unwrap();
        let device = from_headers(&headers, Some("S1".into()));
        assert_eq!(
            (device.brand.as_str(), device.model.as_str(), device.grade.as_str()),
            ("acme", "pc", "dangerous")
        );
        assert_eq!(device.revision, "0");
        assert_eq!(device.serial.as_deref(), Some("S1"));
        assert_eq!(from_headers(&headers, Some(String::new())).serial, None);
    }

    #[test]
    fn a_model_assertion_text_makes_the_facts() {
        let text = "type: model\nauthority-id: brand\nseries: 16\nbrand-id: brand\nmodel: pocketses-pc\narchitecture: amd64\nbase: core22\ngrade: dangerous\nrevision: 4\ntimestamp: 2024-08-09T12:00:00Z\nsign-key-sha3-384: fake\n\nAcLB\n";
        let device = model_from_text(text).unwrap();
        assert_eq!((device.model.as_str(), device.revision.as_str()), ("pocketses-pc", "4"));
        assert!(model_from_text("\u{0}").is_none());
    }
}
