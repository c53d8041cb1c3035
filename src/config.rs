//! The typed configuration of the agent, its defaults, validation, and where each value came from.
//!
//! \[pure\] Values in, values out: reading snapd or flags happens at the edges
//! (`daemon`, `hooks`, `status`), which hand the raw values to this module.
//! snapd stores `snap set pocketses http.port=9000` as a nested document `{"http": {"port": 9000}}`;
//! [`from_document`] flattens it to dotted keys, checks every key in [`KEYS`] and reports **all**
//! problems at once, each in snapd's grammar: `cannot set "interval": must be …, not "-1"`.
//! Keys it does not know are accepted (snapd allows any key) and listed in [`Loaded::unknown`],
//! so `pocketses status` can warn about them; `push.*` and `fleet.*` are reserved for later features.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

/// Output shape of the published JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The documented schema (`docs/metrics.md`).
    #[default]
    V1,
    /// The exact shape of the original Python pocketses.
    Legacy,
}

impl Format {
    /// The config value (`v1`, `legacy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::Legacy => "legacy",
        }
    }
}

/// Everything the daemon needs to run; `Config::default()` is the documented default set.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seconds between two collections (`interval`, 1–86400).
    pub interval: u32,
    /// TCP port of the newline-delimited JSON stream (`port`).
    pub port: u16,
    /// Address the TCP stream listens on (`bind`).
    pub bind: IpAddr,
    /// HTTP endpoint (`http.port`, `http.bind`).
    pub http: HttpConfig,
    /// Publishing options (`publish.*`).
    pub publish: PublishConfig,
    /// Log filter (`log.level`).
    pub log_level: String,
}

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Port (`http.port`); 0 disables HTTP.
    pub port: u16,
    /// Address (`http.bind`).
    pub bind: IpAddr,
}

/// Publishing options.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishConfig {
    /// Subscribers beyond this number are refused (`publish.max-subscribers`).
    pub max_subscribers: usize,
    /// JSON shape on the TCP stream (`publish.format`).
    pub format: Format,
    /// Remodel progress events also go to the TCP stream as lines (`publish.remodel-events`).
    pub remodel_events: bool,
}

/// Default TCP port, the original pocketses' port.
pub const DEFAULT_PORT: u16 = 8888;
/// Default HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 9188;
/// Default interval in seconds.
pub const DEFAULT_INTERVAL: u32 = 60;
/// Default subscriber limit.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 10_000;
/// Largest allowed interval (one day).
pub const MAX_INTERVAL: u32 = 86_400;
/// Largest allowed subscriber limit.
pub const MAX_SUBSCRIBERS: usize = 1_000_000;
/// Log levels `log.level` accepts.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
/// Key the post-refresh hook writes: the configuration schema this revision understands.
pub const SCHEMA_VERSION_KEY: &str = "schema-version";
/// Current configuration schema.
pub const SCHEMA_VERSION: u64 = 1;

impl Default for Config {
    fn default() -> Self {
        let any = IpAddr::from([0, 0, 0, 0]);
        Config {
            interval: DEFAULT_INTERVAL,
            port: DEFAULT_PORT,
            bind: any,
            http: HttpConfig { port: DEFAULT_HTTP_PORT, bind: any },
            publish: PublishConfig {
                max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
                format: Format::V1,
                remodel_events: false,
            },
            log_level: "info".to_string(),
        }
    }
}

/// One documented configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Dotted name (`http.port`).
    pub name: &'static str,
    /// JSON type snapd stores.
    pub kind: &'static str,
    /// Allowed values, as the error message says them.
    pub allowed: &'static str,
    /// Default, as `snap get` prints it.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every key pocketses reads, in documentation order.
pub const KEYS: &[Key] = &[
    Key {
        name: "interval",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 86400",
        default: "60",
        doc: "seconds between two metric collections",
    },
    Key {
        name: "port",
        kind: "integer",
        allowed: "must be a TCP port from 1 to 65535",
        default: "8888",
        doc: "TCP port of the newline-delimited JSON stream",
    },
    Key {
        name: "bind",
        kind: "string",
        allowed: "must be an IPv4 or IPv6 address",
        default: "0.0.0.0",
        doc: "address the JSON stream listens on",
    },
    Key {
        name: "http.port",
        kind: "integer",
        allowed: "must be a TCP port from 1 to 65535, or 0 to turn HTTP off",
        default: "9188",
        doc: "TCP port of the HTTP endpoint (Prometheus text and JSON)",
    },
    Key {
        name: "http.bind",
        kind: "string",
        allowed: "must be an IPv4 or IPv6 address",
        default: "0.0.0.0",
        doc: "address the HTTP endpoint listens on",
    },
    Key {
        name: "publish.max-subscribers",
        kind: "integer",
        allowed: "must be a whole number from 1 to 1000000",
        default: "10000",
        doc: "stream subscribers beyond this number are refused",
    },
    Key {
        name: "publish.format",
        kind: "string",
        allowed: "must be one of v1, legacy",
        default: "v1",
        doc: "JSON shape on the stream: v1 (documented schema) or legacy (the original pocketses)",
    },
    Key {
        name: "publish.remodel-events",
        kind: "boolean",
        allowed: "must be true or false",
        default: "false",
        doc: "also write remodel progress events (`{\"event\":\"remodel\",…}`) as lines on the stream; SSE always carries them",
    },
    Key {
        name: "log.level",
        kind: "string",
        allowed: "must be one of error, warn, info, debug, trace",
        default: "info",
        doc: "daemon log level, applied live; `RUST_LOG`, when set, overrides it",
    },
    Key {
        name: SCHEMA_VERSION_KEY,
        kind: "integer",
        allowed: "must be a whole number from 1",
        default: "1",
        doc: "written by the post-refresh hook: the configuration schema of the installed revision; do not set",
    },
];

/// Prefixes kept for features that come later; keys under them are accepted and not yet used.
pub const RESERVED_PREFIXES: &[&str] = &["push", "fleet"];

/// The documented key called `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// A value that cannot be used, in snapd's grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key.
    pub key: String,
    /// What is allowed (`must be …`).
    pub allowed: String,
    /// The value as given.
    pub given: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot set {}: {}, not {}", quote(&self.key), self.allowed, quote(&self.given))
    }
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The built-in default.
    Default,
    /// snapd's configuration (`snap set`).
    Snapd,
    /// A command-line flag (outside a snap).
    Flag,
}

impl Source {
    /// `default`, `snapd`, `flag`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Snapd => "snapd",
            Source::Flag => "flag",
        }
    }
}

/// Where each documented key's value came from.
pub type Sources = BTreeMap<&'static str, Source>;

/// A checked configuration with provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Source of each key in [`KEYS`].
    pub sources: Sources,
    /// Keys present in snapd that pocketses does not use (dotted).
    pub unknown: Vec<String>,
}

impl Default for Loaded {
    fn default() -> Self {
        Loaded {
            config: Config::default(),
            sources: KEYS.iter().map(|k| (k.name, Source::Default)).collect(),
            unknown: Vec::new(),
        }
    }
}

/// The table of keys for README.md and docs/configuration.md (a test keeps them in step).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| key | type | allowed values | default | what it does |\n|---|---|---|---|---|\n",
    );
    for k in KEYS {
        let allowed = k.allowed.trim_start_matches("must be ");
        out.push_str(&format!(
            "| `{}` | {} | {} | `{}` | {} |\n",
            k.name, k.kind, allowed, k.default, k.doc
        ));
    }
    out
}

/// Command-line flags that override configuration (the snap's daemon is started without any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--interval`.
    pub interval: Option<u32>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--http-port`.
    pub http_port: Option<u16>,
    /// `--bind`: both listeners.
    pub bind: Option<IpAddr>,
    /// `--format`.
    pub format: Option<Format>,
    /// `--max-subscribers`.
    pub max_subscribers: Option<usize>,
    /// `--remodel-events`.
    pub remodel_events: Option<bool>,
}

/// Flattens a nested snapd document into dotted leaf keys (`{"http":{"port":1}}` → `http.port`).
/// Empty objects vanish, as they do in `snap get`.
pub fn flatten(doc: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    if doc.is_object() {
        walk("", doc, &mut out);
    }
    out
}

/// Top-level names of the documented keys (`interval`, `http`, …): what `snapctl get -d` must ask for.
pub fn top_level_keys() -> Vec<&'static str> {
    let mut tops: Vec<&'static str> =
        KEYS.iter().map(|k| k.name.split('.').next().unwrap_or(k.name)).collect();
    tops.extend(RESERVED_PREFIXES);
    tops.dedup();
    tops
}

fn given(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A whole number, given as a JSON integer or a string of digits (`snap set -s`).
fn whole(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

fn in_range<T: TryFrom<i128>>(value: &Value, low: i128, high: i128) -> Option<T> {
    whole(value).filter(|n| (low..=high).contains(n)).and_then(|n| T::try_from(n).ok())
}

/// A boolean, given as JSON `true`/`false` or as the string (`snap set -s`).
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// Reads the snapd document: the checked configuration, or every problem found.
///
/// # Errors
/// All the problems, one per bad key, in [`KEYS`] order.
pub fn from_document(doc: &Value) -> Result<Loaded, Vec<Problem>> {
    let flat = flatten(doc);
    let mut loaded = Loaded::default();
    let mut problems = Vec::new();
    // A scalar where an object of keys belongs (`snap set pocketses http=5`).
    for prefix in ["http", "publish", "log"] {
        if let Some(value) = flat.get(prefix) {
            let names: Vec<&str> = KEYS
                .iter()
                .filter(|k| k.name.starts_with(&format!("{prefix}.")))
                .map(|k| k.name)
                .collect();
            problems.push(Problem {
                key: prefix.to_string(),
                allowed: format!("must hold the keys {}", names.join(", ")),
                given: given(value),
            });
        }
    }
    for spec in KEYS {
        let Some(value) = flat.get(spec.name) else { continue };
        let config = &mut loaded.config;
        let ok = match spec.name {
            "interval" => in_range(value, 1, i128::from(MAX_INTERVAL)).map(|v| config.interval = v),
            "port" => in_range(value, 1, 65_535).map(|v| config.port = v),
            "bind" => text(value).and_then(|s| s.parse().ok()).map(|v| config.bind = v),
            "http.port" => in_range(value, 0, 65_535).map(|v| config.http.port = v),
            "http.bind" => text(value).and_then(|s| s.parse().ok()).map(|v| config.http.bind = v),
            "publish.max-subscribers" => in_range(value, 1, MAX_SUBSCRIBERS as i128)
                .map(|v| config.publish.max_subscribers = v),
            "publish.format" => match text(value) {
                Some("v1") => Some(Format::V1),
                Some("legacy") => Some(Format::Legacy),
                _ => None,
            }
            .map(|v| config.publish.format = v),
            "publish.remodel-events" => boolean(value).map(|v| config.publish.remodel_events = v),
            "log.level" => text(value)
                .filter(|s| LOG_LEVELS.contains(s))
                .map(|s| config.log_level = s.to_string()),
            SCHEMA_VERSION_KEY => in_range::<u64>(value, 1, i128::from(u32::MAX)).map(drop),
            _ => Some(()),
        };
        match ok {
            Some(()) => {
                loaded.sources.insert(spec.name, Source::Snapd);
            }
            None => problems.push(Problem {
                key: spec.name.to_string(),
                allowed: spec.allowed.to_string(),
                given: given(value),
            }),
        }
    }
    let config = &loaded.config;
    if problems.is_empty() && config.http.port != 0 && config.http.port == config.port {
        let http_given = flat.contains_key("http.port");
        problems.push(Problem {
            key: if http_given { "http.port" } else { "port" }.to_string(),
            allowed: if http_given {
                format!("must differ from \"port\" ({})", config.port)
            } else {
                format!("must differ from \"http.port\" ({})", config.http.port)
            },
            given: config.port.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    loaded.unknown = flat
        .keys()
        .filter(|k| key(k).is_none() && !["http", "publish", "log"].contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(loaded)
}

/// Every problem in the document (empty when valid).
pub fn validate(doc: &Value) -> Vec<Problem> {
    from_document(doc).err().unwrap_or_default()
}

/// Whether `key` is reserved for a later feature (`push.*`, `fleet.*`).
pub fn is_reserved(key: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| key == *p || key.starts_with(&format!("{p}.")))
}

impl Loaded {
    /// Applies command-line flags on top (they win over snapd and defaults).
    #[must_use]
    pub fn with_flags(mut self, flags: &Flags) -> Self {
        if let Some(interval) = flags.interval {
            self.config.interval = interval;
            self.sources.insert("interval", Source::Flag);
        }
        if let Some(port) = flags.port {
            self.config.port = port;
            self.sources.insert("port", Source::Flag);
        }
        if let Some(port) = flags.http_port {
            self.config.http.port = port;
            self.sources.insert("http.port", Source::Flag);
        }
        if let Some(bind) = flags.bind {
            self.config.bind = bind;
            self.config.http.bind = bind;
            self.sources.insert("bind", Source::Flag);
            self.sources.insert("http.bind", Source::Flag);
        }
        if let Some(format) = flags.format {
            self.config.publish.format = format;
            self.sources.insert("publish.format", Source::Flag);
        }
        if let Some(max) = flags.max_subscribers {
            self.config.publish.max_subscribers = max;
            self.sources.insert("publish.max-subscribers", Source::Flag);
        }
        if let Some(on) = flags.remodel_events {
            self.config.publish.remodel_events = on;
            self.sources.insert("publish.remodel-events", Source::Flag);
        }
        self
    }
}

/// Checks flag values with the same rules as snapd values.
///
/// # Errors
/// Every bad flag, named like the key it overrides.
pub fn check_flags(flags: &Flags) -> Result<(), Vec<Problem>> {
    let mut doc = serde_json::Map::new();
    if let Some(interval) = flags.interval {
        doc.insert("interval".into(), Value::from(interval));
    }
    if let Some(port) = flags.port {
        doc.insert("port".into(), Value::from(port));
    }
    if let Some(max) = flags.max_subscribers {
        doc.insert("publish".into(), serde_json::json!({"max-subscribers": max}));
    }
    from_document(&Value::Object(doc)).map(drop)
}

impl Config {
    /// The value of a documented key, as snapd would store it.
    pub fn value_of(&self, key: &str) -> Option<Value> {
        Some(match key {
            "interval" => Value::from(self.interval),
            "port" => Value::from(self.port),
            "bind" => Value::from(self.bind.to_string()),
            "http.port" => Value::from(self.http.port),
            "http.bind" => Value::from(self.http.bind.to_string()),
            "publish.max-subscribers" => Value::from(self.publish.max_subscribers),
            "publish.format" => Value::from(self.publish.format.as_str()),
            "publish.remodel-events" => Value::from(self.publish.remodel_events),
            "log.level" => Value::from(self.log_level.as_str()),
            SCHEMA_VERSION_KEY => Value::from(SCHEMA_VERSION),
            _ => return None,
        })
    }
}

/// The defaults for documented keys missing from `doc` (what install and default-configure write).
/// Keys already set, for instance by gadget defaults, are left alone.
pub fn missing_defaults(doc: &Value) -> Vec<(String, Value)> {
    let flat = flatten(doc);
    let defaults = Config::default();
    KEYS.iter()
        .filter(|k| k.name != SCHEMA_VERSION_KEY && !flat.contains_key(k.name))
        .filter_map(|k| defaults.value_of(k.name).map(|v| (k.name.to_string(), v)))
        .collect()
}

/// A key renamed in a schema version: documents older than `schema` have `from`, newer ones `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rename {
    /// Schema version that introduced the new name.
    pub schema: u64,
    /// Old dotted key.
    pub from: &'static str,
    /// New dotted key.
    pub to: &'static str,
}

/// Renames so far. Schema 1 is the first schema, so there is nothing to rename yet;
/// a later schema appends its renames here and bumps [`SCHEMA_VERSION`].
pub const RENAMES: &[Rename] = &[];

/// Migration of a document written by an older revision: the patch to apply (dotted keys, `null` unsets).
pub fn migrate(doc: &Value) -> Vec<(String, Value)> {
    migrate_with(doc, RENAMES)
}

/// [`migrate`] with an explicit rename table: moves each old key whose rename is newer than the
/// stored `schema-version` (a value already under the new name wins) and writes the marker.
pub fn migrate_with(doc: &Value, renames: &[Rename]) -> Vec<(String, Value)> {
    let flat = flatten(doc);
    let stored = flat
        .get(SCHEMA_VERSION_KEY)
        .and_then(whole)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let mut patch = Vec::new();
    for rename in renames.iter().filter(|r| r.schema > stored) {
        if let Some(old) = flat.get(rename.from) {
            if !flat.contains_key(rename.to) {
                patch.push((rename.to.to_string(), old.clone()));
            }
            patch.push((rename.from.to_string(), Value::Null));
        }
    }
    if stored != SCHEMA_VERSION {
        patch.push((SCHEMA_VERSION_KEY.to_string(), Value::from(SCHEMA_VERSION)));
    }
    patch
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(doc: Value) -> Vec<String> {
        validate(&doc).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn empty_document_is_the_defaults() {
        let loaded = from_document(&json!({})).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.sources.values().all(|s| *s == Source::Default));
        assert_eq!(loaded.sources.len(), KEYS.len());
    }

    #[test]
    fn nested_document_sets_every_key() {
        let doc = json!({"interval": 30, "port": 7000, "bind": "127.0.0.1",
            "http": {"port": 0, "bind": "::1"},
            "publish": {"max-subscribers": 5, "format": "legacy", "remodel-events": true},
            "log": {"level": "debug"}, "schema-version": 1});
        let loaded = from_document(&doc).unwrap();
        let c = &loaded.config;
        assert_eq!(c.interval, 30);
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.http.port, 0);
        assert_eq!(c.http.bind.to_string(), "::1");
        assert_eq!(c.publish.max_subscribers, 5);
        assert_eq!(c.publish.format, Format::Legacy);
        assert!(c.publish.remodel_events);
        assert_eq!(c.log_level, "debug");
        assert!(loaded.sources.values().all(|s| *s == Source::Snapd));
        assert!(loaded.unknown.is_empty());
    }

    #[test]
    fn digit_strings_are_numbers() {
        let loaded = from_document(&json!({"interval": "15", "port": "9000"})).unwrap();
        assert_eq!((loaded.config.interval, loaded.config.port), (15, 9000));
        let doc = json!({"publish": {"remodel-events": "true"}});
        assert!(from_document(&doc).unwrap().config.publish.remodel_events);
    }

    #[test]
    fn bad_values_for_every_key() {
        let table: &[(Value, &str)] = &[
            (
                json!({"interval": -1}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "-1""#,
            ),
            (
                json!({"interval": 0}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "0""#,
            ),
            (
                json!({"interval": 86401}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "86401""#,
            ),
            (
                json!({"interval": 1.5}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "1.5""#,
            ),
            (
                json!({"interval": "abc"}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "abc""#,
            ),
            (
                json!({"interval": true}),
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "true""#,
            ),
            (
                json!({"port": 0}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, not "0""#,
            ),
            (
                json!({"port": 65536}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, not "65536""#,
            ),
            (
                json!({"port": "http"}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, not "http""#,
            ),
            (
                json!({"bind": "localhost"}),
                r#"cannot set "bind": must be an IPv4 or IPv6 address, not "localhost""#,
            ),
            (
                json!({"bind": 127}),
                r#"cannot set "bind": must be an IPv4 or IPv6 address, not "127""#,
            ),
            (
                json!({"http": {"port": -5}}),
                r#"cannot set "http.port": must be a TCP port from 1 to 65535, or 0 to turn HTTP off, not "-5""#,
            ),
            (
                json!({"http": {"port": 70000}}),
                r#"cannot set "http.port": must be a TCP port from 1 to 65535, or 0 to turn HTTP off, not "70000""#,
            ),
            (
                json!({"http": {"bind": "300.1.1.1"}}),
                r#"cannot set "http.bind": must be an IPv4 or IPv6 address, not "300.1.1.1""#,
            ),
            (
                json!({"http": 5}),
                r#"cannot set "http": must hold the keys http.port, http.bind, not "5""#,
            ),
            (
                json!({"publish": {"max-subscribers": 0}}),
                r#"cannot set "publish.max-subscribers": must be a whole number from 1 to 1000000, not "0""#,
            ),
            (
                json!({"publish": {"max-subscribers": 1000001}}),
                r#"cannot set "publish.max-subscribers": must be a whole number from 1 to 1000000, not "1000001""#,
            ),
            (
                json!({"publish": {"format": "v2"}}),
                r#"cannot set "publish.format": must be one of v1, legacy, not "v2""#,
            ),
            (
                json!({"publish": {"format": ["v1"]}}),
                r#"cannot set "publish.format": must be one of v1, legacy, not "[\"v1\"]""#,
            ),
            (
                json!({"publish": "x"}),
                r#"cannot set "publish": must hold the keys publish.max-subscribers, publish.format, publish.remodel-events, not "x""#,
            ),
            (
                json!({"publish": {"remodel-events": "yes"}}),
                r#"cannot set "publish.remodel-events": must be true or false, not "yes""#,
            ),
            (
                json!({"publish": {"remodel-events": 1}}),
                r#"cannot set "publish.remodel-events": must be true or false, not "1""#,
            ),
            (
                json!({"log": {"level": "loud"}}),
                r#"cannot set "log.level": must be one of error, warn, info, debug, trace, not "loud""#,
            ),
            (
                json!({"log": "debug"}),
                r#"cannot set "log": must hold the keys log.level, not "debug""#,
            ),
            (
                json!({"schema-version": 0}),
                r#"cannot set "schema-version": must be a whole number from 1, not "0""#,
            ),
            (
                json!({"http": {"port": 8888}}),
                r#"cannot set "http.port": must differ from "port" (8888), not "8888""#,
            ),
            (
                json!({"port": 9188}),
                r#"cannot set "port": must differ from "http.port" (9188), not "9188""#,
            ),
        ];
        for (doc, want) in table {
            assert_eq!(problems(doc.clone()), vec![want.to_string()], "{doc}");
        }
        // Every documented key has at least one bad value above.
        for spec in KEYS {
            assert!(
                table.iter().any(|(d, _)| flatten(d).contains_key(spec.name)),
                "no bad value for {}",
                spec.name
            );
        }
    }

    #[test]
    fn all_problems_are_reported() {
        let got = problems(
            json!({"interval": -1, "port": 0, "log": {"level": "x"}, "publish": {"format": "y"}}),
        );
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with(r#"cannot set "interval""#));
        assert!(got[1].starts_with(r#"cannot set "port""#));
        assert!(got[2].starts_with(r#"cannot set "publish.format""#));
        assert!(got[3].starts_with(r#"cannot set "log.level""#));
    }

    #[test]
    fn unknown_keys_are_kept_for_status() {
        let loaded = from_document(&json!({"colour": "red", "push": {"url": "x"}})).unwrap();
        assert_eq!(loaded.unknown, vec!["colour", "push.url"]);
        assert!(is_reserved("push.url") && !is_reserved("pushy"));
    }

    #[test]
    fn flags_win_and_are_checked() {
        let loaded = from_document(&json!({"interval": 30})).unwrap();
        let flags = Flags { interval: Some(5), ..Flags::default() };
        let loaded = loaded.with_flags(&flags);
        assert_eq!(loaded.config.interval, 5);
        assert_eq!(loaded.sources["interval"], Source::Flag);
        assert_eq!(loaded.sources["port"], Source::Default);
        assert!(check_flags(&flags).is_ok());
        let bad = check_flags(&Flags { interval: Some(0), ..Flags::default() }).unwrap_err();
        assert_eq!(bad[0].key, "interval");
    }

    #[test]
    fn defaults_fill_only_missing_keys() {
        let missing = missing_defaults(&json!({"interval": 10, "http": {"port": 9999}}));
        let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "port",
                "bind",
                "http.bind",
                "publish.max-subscribers",
                "publish.format",
                "publish.remodel-events",
                "log.level"
            ]
        );
        assert_eq!(missing[0].1, json!(8888));
        // The defaults written make a valid document.
        assert!(validate(&json!({"port": 8888, "http": {"port": 9188}})).is_empty());
    }

    #[test]
    fn migrate_adds_marker_and_moves_renamed_keys() {
        assert_eq!(
            migrate(&json!({"interval": 5})),
            vec![("schema-version".to_string(), json!(1))]
        );
        let renames = [Rename { schema: 1, from: "format", to: "publish.format" }];
        assert_eq!(
            migrate_with(&json!({"format": "legacy"}), &renames),
            vec![
                ("publish.format".to_string(), json!("legacy")),
                ("format".to_string(), Value::Null),
                ("schema-version".to_string(), json!(1)),
            ]
        );
        assert!(migrate(&json!({"schema-version": 1})).is_empty());
        // Already migrated documents keep their keys; a new-name value wins over the old one.
        assert!(migrate_with(&json!({"schema-version": 1, "format": "x"}), &renames).is_empty());
        assert_eq!(
            migrate_with(&json!({"format": "legacy", "publish": {"format": "v1"}}), &renames)[0],
            ("format".to_string(), Value::Null)
        );
    }

    #[test]
    fn top_level_keys_cover_documented_and_reserved() {
        assert_eq!(
            top_level_keys(),
            vec![
                "interval",
                "port",
                "bind",
                "http",
                "publish",
                "log",
                "schema-version",
                "push",
                "fleet"
            ]
        );
    }

    #[test]
    fn value_of_round_trips_through_the_document() {
        let c = Config::default();
        let mut doc = serde_json::Map::new();
        for k in KEYS {
            doc.insert(k.name.to_string(), c.value_of(k.name).unwrap());
        }
        // Dotted keys in one flat object are not nested, so build the nested form by hand.
        let nested = json!({"interval": doc["interval"], "port": doc["port"], "bind": doc["bind"],
            "http": {"port": doc["http.port"], "bind": doc["http.bind"]},
            "publish": {"max-subscribers": doc["publish.max-subscribers"], "format": doc["publish.format"]},
            "log": {"level": doc["log.level"]}});
        assert_eq!(from_document(&nested).unwrap().config, c);
    }

    proptest::proptest! {
        #[test]
        fn valid_values_load_exactly(interval in 1u32..=86_400, port in 1u16..=65_535, http in 0u16..=65_535,
                                     max in 1usize..=1_000_000, legacy in proptest::bool::ANY) {
            proptest::prop_assume!(http == 0 || http != port);
            let format = if legacy { "legacy" } else { "v1" };
            let doc = json!({"interval": interval, "port": port, "http": {"port": http},
                "publish": {"max-subscribers": max, "format": format}});
            let c = from_document(&doc).unwrap().config;
            proptest::prop_assert_eq!((c.interval, c.port, c.http.port, c.publish.max_subscribers), (interval, port, http, max));
            proptest::prop_assert_eq!(c.publish.format.as_str(), format);
        }

        #[test]
        fn out_of_range_intervals_give_one_problem(interval in proptest::prop_oneof![-1_000_000i64..=0, 86_401i64..=10_000_000]) {
            let problems = validate(&json!({"interval": interval}));
            proptest::prop_assert_eq!(problems.len(), 1);
            proptest::prop_assert_eq!(&problems[0].key, "interval");
            proptest::prop_assert_eq!(&problems[0].given, &interval.to_string());
        }
    }
}
