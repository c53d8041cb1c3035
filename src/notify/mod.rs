//! Notifications of check state changes: `notify.webhook.url` gets one JSON document POSTed for
//! every change of a check's reported state (docs/checks.md, "Notifications").
//!
//! There is no second delivery pipeline here: the webhook is a push sink
//! ([`crate::push::sink::Pushes`]) named [`SINK`] whose records are the notification documents
//! ([`crate::push::encode::SinkFormat::Webhook`], one document per request), so a notification
//! is on disk (`fdatasync`) before it is sent, leaves the spool only on a 2xx, and follows the
//! push error table (`push::policy`: 400/422 to `rejected/`, 429/503 `Retry-After`, 401/403 and
//! the rest kept with backoff), in order, across restarts and `kill -9`.
//!
//! - \[pure\] in this file: [`Changes`] (what one run of the checks changed, as the collector hands
//!   it over), [`Identity`], [`document`], [`sinks`] (the configuration → the one sink).
//! - [`task`] \[io\]: the task that follows the configuration, makes the documents and spools them.
//!
//! What it does not do: decide what a change is (`checks::runner::Transition`: a change of reported
//! state after hysteresis, a new result that is not OK, a result that went away), or retry itself.

pub mod task;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::report;
use crate::checks::runner::Transition;
use crate::config::{NotifyConfig, SinkConfig, SinkFormat};

/// The name of the webhook's sink: its spool is `$SNAP_COMMON/spool/notify.webhook/`, its figures
/// are `pocketses_push_*{sink="notify.webhook"}`. Push sink names cannot hold a dot, so the two
/// never meet.
pub const SINK: &str = "notify.webhook";

/// Changes waiting for the notifier; past this (a disk stuck for minutes) a run's changes are
/// counted as missed rather than queued without bound.
pub const QUEUE: usize = 64;

/// What one run of the checks changed, handed from the collector to [`task::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// When the checks ran, seconds since the Unix epoch.
    pub time: f64,
    /// The host name of the snapshot they ran on.
    pub hostname: String,
    /// The changes, in order.
    pub transitions: Vec<Transition>,
}

/// Who sends: the host name and, when snapd told the daemon, the model and serial.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The host name.
    pub hostname: String,
    /// `brand-id` of the model; empty when unknown.
    pub brand: String,
    /// The model's name; empty when unknown.
    pub model: String,
    /// The serial, once the device is registered.
    pub serial: Option<String>,
}

/// One notification, as it is POSTed.
#[derive(Debug, Serialize)]
struct Document<'a> {
    /// Always `"check"`: the kind of notification, for receivers that get others later.
    event: &'static str,
    check: &'a str,
    /// `null` for a result seen for the first time.
    from: Option<&'static str>,
    /// `null` for a result that is no longer reported.
    to: Option<&'static str>,
    message: String,
    value: Option<f64>,
    unit: &'static str,
    threshold: Option<String>,
    flapping: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
    /// When the checks ran (RFC 3339, UTC).
    time: String,
    device: &'a Identity,
}

/// The JSON document of one transition observed at `time`. \[pure\]
pub fn document(transition: &Transition, time: f64, device: &Identity) -> Vec<u8> {
    let result = &transition.reported.result;
    let message = if transition.removed {
        format!("{} is no longer checked", result.check)
    } else {
        result.summary()
    };
    let doc = Document {
        event: "check",
        check: &result.check,
        from: transition.from.map(|s| s.as_str()),
        to: (!transition.removed).then(|| result.state.as_str()),
        message,
        value: result.value.filter(|v| v.is_finite()),
        unit: report::unit_of(result).trim(),
        threshold: result.threshold.map(|t| t.to_string()),
        flapping: result.flapping,
        removed: transition.removed,
        time: report::rfc3339(time),
        device,
    };
    // Strings, finite numbers, booleans: encoding cannot fail.
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The sinks the notifier runs for `notify`: the webhook when its URL is set, else none. \[pure\]
pub fn sinks(notify: &NotifyConfig) -> BTreeMap<String, SinkConfig> {
    let webhook = &notify.webhook;
    let Some(url) = &webhook.url else { return BTreeMap::new() };
    let sink = SinkConfig {
        url: Some(url.clone()),
        format: Some(SinkFormat::Webhook),
        token: webhook.token.clone(),
        ca: webhook.ca.clone(),
        // One notification per request, in order.
        batch: Some(1),
        ..SinkConfig::default()
    };
    BTreeMap::from([(SINK.to_string(), sink)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::runner::Reported;
    use crate::checks::{Range, Result, State};
    use serde_json::{json, Value};

    fn transition(from: Option<State>, to: State, removed: bool) -> Transition {
        Transition {
            from,
            reported: Reported {
                result: Result {
                    check: "filesystem:/var".into(),
                    state: to,
                    value: Some(96.5),
                    threshold: Some("95".parse::<Range>().unwrap()),
                    sentence: crate::checks::sentence::Sentence::text(
                        "/var is 96.5 % full (crit at 95 %)",
                    ),
                    flapping: false,
                },
                since: 10.0,
            },
            removed,
        }
    }

    fn device() -> Identity {
        Identity {
            hostname: "pi".into(),
            brand: "acme".into(),
            model: "gw".into(),
            serial: Some("S1".into()),
        }
    }

    #[test]
    fn a_change_is_one_document_with_the_device() {
        let doc = document(&transition(Some(State::Ok), State::Crit, false), 60.0, &device());
        let doc: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(
            doc,
            json!({
                "event": "check", "check": "filesystem:/var", "from": "OK", "to": "CRIT",
                "message": "/var is 96.5 % full (crit at 95 %)", "value": 96.5, "unit": "%",
                "threshold": "95", "flapping": false, "time": "1970-01-01T00:01:00Z",
                "device": {"hostname": "pi", "brand": "acme", "model": "gw", "serial": "S1"},
            })
        );
    }

    #[test]
    fn new_and_removed_results_have_null_ends() {
        let first = document(&transition(None, State::Warn, false), 0.0, &Identity::default());
        let first: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!((first["from"].clone(), first["to"].clone()), (Value::Null, json!("WARN")));
        assert_eq!(first["device"]["serial"], Value::Null);
        assert!(first.get("removed").is_none());
        let gone = document(&transition(Some(State::Crit), State::Crit, true), 0.0, &device());
        let gone: Value = serde_json::from_slice(&gone).unwrap();
        assert_eq!((gone["from"].clone(), gone["to"].clone()), (json!("CRIT"), Value::Null));
        assert_eq!(gone["removed"], true);
        assert_eq!(gone["message"], "filesystem:/var is no longer checked");
    }

    #[test]
    fn the_webhook_is_a_sink_of_one_document_per_request() {
        assert!(sinks(&NotifyConfig::default()).is_empty());
        let notify = NotifyConfig {
            webhook: SinkConfig {
                url: Some("https://h/x".into()),
                token: Some("t".into()),
                ..SinkConfig::default()
            },
        };
        let sinks = sinks(&notify);
        let sink = &sinks[SINK];
        assert_eq!(sink.format, Some(SinkFormat::Webhook));
        assert_eq!((sink.batch(), sink.token.as_deref()), (1, Some("t")));
        assert!(!crate::config::valid_sink_name(SINK), "never a push sink's name");
    }

    #[test]
    fn documents_make_webhook_records_and_bodies() {
        use crate::push::encode;
        let doc = document(&transition(Some(State::Ok), State::Warn, false), 0.0, &device());
        let record = encode::document_record(&doc).unwrap();
        assert_eq!(encode::points(SinkFormat::Webhook, &record).unwrap(), 1);
        let body = encode::body(SinkFormat::Webhook, &[record.as_slice()]).unwrap();
        assert_eq!(body.bytes, doc);
        assert_eq!(body.content_type, "application/json");
        assert!(encode::document_record(b"{not json").is_err());
    }
}
