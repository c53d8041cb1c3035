//! `pocketses push --dry-run [SINK] [--set KEY=VALUE]…`: collects one snapshot and prints what
//! each sink would be sent, without sending or spooling anything. \[io\]; rendering is pure.
//!
//! The sinks are snapd's configuration (in a snap) with `--set` on top, checked like the daemon's.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::client::redact;
use super::encode::{self, SinkFormat};
use crate::config::{Config, Settings};
use crate::metrics::Snapshot;

/// Flags of `pocketses push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Print what would be sent instead of sending (the only mode: the daemon does the sending).
    #[arg(long)]
    pub dry_run: bool,
    /// Only this sink.
    pub sink: Option<String>,
    /// A configuration key, as `pocketses daemon --set` takes it (repeatable), over snapd's.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::config::parse_setting)]
    pub set: Vec<(String, Value)>,
}

/// Runs the command.
///
/// # Errors
/// Without `--dry-run`, on bad configuration, an unknown sink or a snapshot that cannot be encoded.
pub fn main(args: PushArgs) -> anyhow::Result<ExitCode> {
    if !args.dry_run {
        anyhow::bail!("cannot push by hand: the daemon sends; use --dry-run to see what it sends");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let doc = runtime.block_on(snapd_document());
    let config = load(&doc, &args.set)?;
    let snapshot = crate::metrics::collect::Collector::new().collect();
    let text = render(&config, &snapshot, args.sink.as_deref())?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// snapd's configuration document when snapd answers (in a snap), else nothing.
pub(crate) async fn snapd_document() -> Value {
    let source = crate::snapd::conf::ConfigSource::from_env();
    if !crate::control::uses_snapd(&source) {
        return Value::Null;
    }
    let Ok(via) = source.detect().await else { return Value::Null };
    source.document(via).await.unwrap_or(Value::Null)
}

pub(crate) fn load(doc: &Value, settings: &Settings) -> anyhow::Result<Config> {
    crate::config::load(doc, settings).map(|l| l.config).map_err(|problems| {
        anyhow::anyhow!(
            "{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

/// What each sink (or only `only`) would be sent for `snapshot`. \[pure\]
///
/// # Errors
/// When `only` names no sink, or a record cannot be encoded.
pub fn render(config: &Config, snapshot: &Snapshot, only: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = only {
        if !config.push.contains_key(name) {
            anyhow::bail!("cannot find push sink {name:?} (configured: {})", names(config));
        }
    }
    if config.push.is_empty() {
        return Ok("No push sinks configured (push.NAME.url, push.NAME.format).\n".to_string());
    }
    let mut out = String::new();
    for (name, sink) in config.push.iter().filter(|(n, _)| only.is_none_or(|o| o == n.as_str())) {
        let format = sink.format.unwrap_or(SinkFormat::Json);
        let record = encode::record(format, snapshot, &sink.tags)
            .with_context(|| format!("cannot encode for push sink {name}"))?;
        let body = encode::body(format, &[record.as_slice()])
            .with_context(|| format!("cannot encode for push sink {name}"))?;
        let mut headers = vec![format!("Content-Type: {}", body.content_type)];
        headers.extend(body.content_encoding.map(|e| format!("Content-Encoding: {e}")));
        headers.extend(body.headers.iter().map(|(k, v)| format!("{k}: {v}")));
        let disabled = if sink.enabled() { "" } else { " (disabled: would not send)" };
        out.push_str(&format!(
            "push sink {name}: POST {} ({}, {} bytes, {}){disabled}\n",
            redact(sink.url.as_deref().unwrap_or_default()),
            format.as_str(),
            body.bytes.len(),
            headers.join(", ")
        ));
        let text = encode::describe(format, &record)
            .with_context(|| format!("cannot encode for push sink {name}"))?;
        out.push_str(&text);
    }
    Ok(out)
}

fn names(config: &Config) -> String {
    if config.push.is_empty() {
        return "none".to_string();
    }
    config.push.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(settings: &[(&str, Value)]) -> Config {
        let settings: Settings = settings.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        load(&Value::Null, &settings).unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot { timestamp: 1_700_000_000.0, hostname: "dev1".into(), ..Snapshot::default() }
    }

    #[test]
    fn prints_each_sinks_request_with_its_tags() {
        let c = config(&[
            ("push.influx.url", json!("http://db:8086/write?db=m&u=a&p=secret")),
            ("push.influx.format", json!("influx")),
            ("push.influx.tags", json!("site=lab")),
            ("push.hub.url", json!("http://hub:9188/v1/ingest")),
            ("push.hub.format", json!("json")),
        ]);
        let text = render(&c, &snapshot(), None).unwrap();
        assert!(text.contains("push sink hub: POST http://hub:9188/v1/ingest (json, "), "{text}");
        assert!(text.contains("push sink influx: POST http://db:8086/write (influx, "), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let only = render(&c, &snapshot(), Some("hub")).unwrap();
        assert!(!only.contains("push sink influx"), "{only}");
        assert!(only.contains("\"hostname\":\"dev1\""), "{only}");
        let err = render(&c, &snapshot(), Some("nope")).unwrap_err().to_string();
        assert_eq!(err, "cannot find push sink \"nope\" (configured: hub, influx)");
    }

    #[test]
    fn no_sinks_is_a_sentence() {
        let text = render(&Config::default(), &snapshot(), None).unwrap();
        assert_eq!(text, "No push sinks configured (push.NAME.url, push.NAME.format).\n");
    }
}
