//! The typed configuration of the agent, its defaults, validation, and where each value came from.
//!
//! \[pure\] Values in, values out: reading snapd or flags happens at the edges
//! (`daemon`, `hooks`, `status`), which hand the raw values to this module.
//! snapd stores `snap set pocketses http.port=9000` as a nested document `{"http": {"port": 9000}}`;
//! [`load`] flattens it to dotted keys, checks every key against [`KEYS`] and reports **all**
//! problems at once, each in snapd's grammar: `cannot set "interval": must be …, not "-1"`.
//!
//! Sources, weakest first: the defaults, snapd's document, the daemon's command-line settings
//! (`--set KEY=VALUE` and the shorthand flags, see [`Settings`]). Every source goes through the
//! same [`KEYS`] table, so a key has one name, one check and one message wherever it is given.
//! [`KEYS`] is the only list of keys: each entry carries the code that reads and writes it.
//! Keys snapd holds that pocketses does not know are accepted (snapd allows any key) and listed in
//! [`Loaded::unknown`], so `pocketses status` can warn about them; on the command line they are
//! refused. No key prefix is reserved for a later feature at present ([`RESERVED_PREFIXES`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::Value;

use crate::checks::Range;
use crate::publish::limits;
pub use crate::push::encode::SinkFormat;

/// JSON shape of the TCP stream: the one format enum of the crate, restricted to its line formats.
pub use crate::metrics::encode::Format;

/// Everything the daemon needs to run; `Config::default()` is the documented default set.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seconds between two collections (`interval`, 1–86400).
    pub interval: u32,
    /// TCP port of the newline-delimited JSON stream (`port`); 0 lets the kernel pick one.
    pub port: u16,
    /// Address the TCP stream listens on (`bind`).
    pub bind: IpAddr,
    /// HTTP endpoint (`http.port`, `http.bind`).
    pub http: HttpConfig,
    /// Publishing options (`publish.*`).
    pub publish: PublishConfig,
    /// TLS files (`tls.*`).
    pub tls: TlsConfig,
    /// Connection limits (`limits.*`).
    pub limits: LimitsConfig,
    /// Log filter (`log.level`).
    pub log_level: String,
    /// Per-check settings (`checks.<check>.*`), by check name; checks not named use their defaults.
    pub checks: BTreeMap<String, CheckConfig>,
    /// Fleet updates (`fleet.*`).
    pub fleet: FleetConfig,
    /// Push sinks (`push.<name>.*`), by sink name.
    pub push: BTreeMap<String, SinkConfig>,
    /// Notifications of check state changes (`notify.*`).
    pub notify: NotifyConfig,
    /// Hub mode (`hub.*`): spokes to poll, ingest of documents (docs/push.md).
    pub hub: HubConfig,
    /// Collector groups (`collectors.<name>.*`), by group; groups not named use their defaults.
    pub collectors: BTreeMap<String, CollectorConfig>,
}

/// Where check state changes are sent (`notify.*`, docs/checks.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyConfig {
    /// The webhook: `url`, `token` and `ca` as a push sink has them (`notify.webhook.*`);
    /// no `url`, no notifications.
    pub webhook: SinkConfig,
}

/// Hub mode (`hub.*`): other daemons' metrics forwarded through this one's sinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HubConfig {
    /// Spokes polled for `pocketses.metrics/v1` documents (`hub.spokes`), in the order given.
    pub spokes: Vec<String>,
    /// Seconds between two polls of a spoke (`hub.interval`); `None`: the daemon's `interval`.
    pub interval: Option<u32>,
    /// Seconds a poll may take (`hub.timeout`); `None`: [`DEFAULT_HUB_TIMEOUT`].
    pub timeout: Option<u32>,
    /// Whether `POST /v1/ingest` takes documents (`hub.ingest`).
    pub ingest: bool,
    /// Bearer token sent to every spoke (`hub.token`): the spokes' `http.token`.
    pub token: Option<String>,
    /// CA certificates that sign https spokes' certificates (`hub.ca`), instead of the system's.
    pub ca: Option<PathBuf>,
}

/// Seconds a spoke has to answer when `hub.timeout` is not set.
pub const DEFAULT_HUB_TIMEOUT: u32 = 10;
/// Most spokes `hub.spokes` may list.
pub const MAX_SPOKES: usize = 1000;

/// One collector group (`collectors.<name>.*`); `None` where the default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Seconds between two readings of the group (`collectors.<name>.interval`); `None`: every
    /// collection, at `interval`.
    pub interval: Option<u32>,
    /// Whether the group is read at all (`collectors.<name>.enabled`).
    pub enabled: Option<bool>,
}

/// The collector groups `collectors.<name>.*` names.
pub const COLLECTORS: &[&str] =
    &["cpu", "memory", "network", "filesystems", "temperatures", "load"];

/// One push sink as configured (`push.<name>.*`); `None` where the documented default applies.
/// [`load`] makes sure a loaded sink has its `url` and `format`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkConfig {
    /// Where batches are POSTed (`push.<name>.url`), an `http://` or `https://` URL.
    pub url: Option<String>,
    /// Wire format (`push.<name>.format`).
    pub format: Option<SinkFormat>,
    /// InfluxDB 2.x `Token`, or a bearer token for the other stores (`push.<name>.token`).
    pub token: Option<String>,
    /// Basic-auth user (`push.<name>.username`, InfluxDB 1.x).
    pub username: Option<String>,
    /// Its password (`push.<name>.password`).
    pub password: Option<String>,
    /// Seconds between two snapshots spooled for this sink (`push.<name>.interval`); `None`: every one.
    pub interval: Option<u32>,
    /// Records (snapshots) per request (`push.<name>.batch`).
    pub batch: Option<u32>,
    /// Extra tags added to every point (`push.<name>.tags`), in the order given.
    pub tags: Vec<(String, String)>,
    /// CA certificates that sign the store's certificate (`push.<name>.ca`), instead of the system's.
    pub ca: Option<PathBuf>,
    /// Spool size limit in bytes (`push.<name>.spool.max-bytes`).
    pub spool_max_bytes: Option<u64>,
    /// Spooled records older than this many seconds are dropped (`push.<name>.spool.max-age`).
    pub spool_max_age: Option<u64>,
    /// Whether the sink sends (`push.<name>.enabled`); a disabled sink keeps its spool.
    pub enabled: Option<bool>,
}

/// Records per request when `push.<name>.batch` is not set.
pub const DEFAULT_PUSH_BATCH: u32 = 60;
/// Largest `push.<name>.batch`.
pub const MAX_PUSH_BATCH: u32 = 10_000;
/// Spool size limit when `push.<name>.spool.max-bytes` is not set (64 MiB).
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;

impl SinkConfig {
    /// Records per request.
    pub fn batch(&self) -> usize {
        self.batch.unwrap_or(DEFAULT_PUSH_BATCH) as usize
    }

    /// Whether the sink sends.
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The spool's size limit in bytes.
    pub fn spool_max_bytes(&self) -> u64 {
        self.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES)
    }
}

/// The fleet server and the keys bundles must be signed with (`fleet.*`, docs/fleet.md).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// The DDI server's base URL (`fleet.url`), `http://` or `https://`, without a final `/`.
    pub url: Option<String>,
    /// CA certificates of a private server (`fleet.ca`).
    pub ca: Option<PathBuf>,
    /// hawkBit tenant (`fleet.tenant`).
    pub tenant: String,
    /// Controller id (`fleet.controller-id`); `None`: the serial, else brand-model-hostname.
    pub controller_id: Option<String>,
    /// hawkBit target token (`fleet.token`).
    pub token: Option<String>,
    /// hawkBit gateway token (`fleet.gateway-token`).
    pub gateway_token: Option<String>,
    /// Trusted operator keys (`fleet.trusted-keys`), as given.
    pub trusted_keys: Option<TrustedKeys>,
    /// Whether the fleet client runs (`fleet.enabled`).
    pub enabled: bool,
}

/// `fleet.trusted-keys`: the keys themselves, or a file that holds them.
#[derive(Debug, Clone, PartialEq)]
pub enum TrustedKeys {
    /// Public keys given in the value (base64, as `key export` prints them).
    Keys(Vec<String>),
    /// A file of keys, one or more per line (relative: in `$SNAP_COMMON`).
    File(PathBuf),
}

/// Default `fleet.tenant`, hawkBit's and gooseBit's.
pub const DEFAULT_FLEET_TENANT: &str = "DEFAULT";

/// The settings of one check; `None` where the check's own default applies (see `checks::builtin`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckConfig {
    /// Range that makes the check WARN (`checks.<check>.warn`).
    pub warn: Option<Range>,
    /// Range that makes the check CRIT (`checks.<check>.crit`).
    pub crit: Option<Range>,
    /// Non-OK results in a row before the state changes (`checks.<check>.failures-before-critical`).
    pub failures_before_critical: Option<u32>,
    /// OK results in a row before the state returns to OK (`checks.<check>.successes-before-ok`).
    pub successes_before_ok: Option<u32>,
    /// Whether the check runs (`checks.<check>.enabled`).
    pub enabled: Option<bool>,
}

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Port (`http.port`); 0 disables HTTP.
    pub port: u16,
    /// Address (`http.bind`).
    pub bind: IpAddr,
    /// Connections open at once (`http.max-connections`).
    pub max_connections: usize,
    /// SSE streams open at once (`http.max-sse`).
    pub max_sse: usize,
    /// Bearer token of both listeners (`http.token`).
    pub token: Option<String>,
    /// Basic-auth users and their bcrypt hashes (`http.users.<user>`).
    pub users: BTreeMap<String, String>,
    /// `/metrics` needs no credentials (`http.metrics-public`).
    pub metrics_public: bool,
}

/// TLS files of both listeners (`tls.*`), as given: relative paths are resolved by the listeners.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// Certificate chain (`tls.cert`).
    pub cert: Option<PathBuf>,
    /// Its private key (`tls.key`).
    pub key: Option<PathBuf>,
    /// CA of client certificates (`tls.client-ca`).
    pub client_ca: Option<PathBuf>,
}

/// Connection limits across listeners (`limits.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Connections one source holds at once (`limits.per-source`).
    pub per_source: usize,
}

/// Publishing options.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishConfig {
    /// Subscribers beyond this number are refused (`publish.max-subscribers`).
    pub max_subscribers: usize,
    /// JSON shape on the TCP stream (`publish.format`): [`Format::Json`] or [`Format::Legacy`].
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
            http: HttpConfig {
                port: DEFAULT_HTTP_PORT,
                bind: any,
                max_connections: limits::MAX_CONNECTIONS,
                max_sse: limits::MAX_SSE,
                token: None,
                users: BTreeMap::new(),
                metrics_public: false,
            },
            tls: TlsConfig::default(),
            limits: LimitsConfig { per_source: limits::PER_SOURCE },
            publish: PublishConfig {
                max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
                format: Format::Json,
                remodel_events: false,
            },
            log_level: "info".to_string(),
            checks: BTreeMap::new(),
            fleet: FleetConfig {
                url: None,
                ca: None,
                tenant: DEFAULT_FLEET_TENANT.to_string(),
                controller_id: None,
                token: None,
                gateway_token: None,
                trusted_keys: None,
                enabled: false,
            },
            push: BTreeMap::new(),
            notify: NotifyConfig::default(),
            hub: HubConfig::default(),
            collectors: BTreeMap::new(),
        }
    }
}

/// Stores a checked value into a [`Config`]; `None` when the value is not allowed.
/// The `&str` is the name that fills the key's `<…>` segment (empty for plain keys).
type Setter = fn(&mut Config, &str, &Value) -> Option<()>;
/// Reads a key back from a [`Config`]: one `(segment, value)` per entry (one with an empty
/// segment for plain keys; none when a `<…>` key has no entries).
type Getter = fn(&Config) -> Vec<(String, Value)>;

/// One documented configuration key: its name, its documentation, and the only code that reads
/// and writes it. [`KEYS`] is the one list of keys; nothing else spells their names.
#[derive(Clone, Copy)]
pub struct Key {
    /// Dotted name (`http.port`); one segment may be a placeholder such as `<user>`.
    pub name: &'static str,
    /// JSON type snapd stores.
    pub kind: &'static str,
    /// Allowed values, as the error message says them.
    pub allowed: &'static str,
    /// Default, as `snap get` prints it (empty when there is none).
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
    set: Setter,
    get: Getter,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Key {
    /// Whether the dotted `key` is this key; returns what fills the placeholder (empty for plain keys).
    pub fn matches<'a>(&self, key: &'a str) -> Option<&'a str> {
        let mut filled = "";
        let mut want = self.name.split('.');
        let mut have = key.split('.');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return Some(filled),
                (Some(w), Some(h)) if w.starts_with('<') && !h.is_empty() => filled = h,
                (Some(w), Some(h)) if w == h => {}
                _ => return None,
            }
        }
    }

    /// The dotted key for placeholder `segment` (the name itself for plain keys).
    pub fn concrete(&self, segment: &str) -> String {
        if segment.is_empty() {
            return self.name.to_string();
        }
        self.name
            .split('.')
            .map(|part| if part.starts_with('<') { segment } else { part })
            .collect::<Vec<_>>()
            .join(".")
    }
}

fn one(value: impl Into<Value>) -> Vec<(String, Value)> {
    vec![(String::new(), value.into())]
}

/// Every key pocketses reads, in documentation order.
pub const KEYS: &[Key] = &[
    Key {
        name: "interval",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 86400",
        default: "60",
        doc: "seconds between two metric collections",
        set: |c, _, v| in_range(v, 1, i128::from(MAX_INTERVAL)).map(|n| c.interval = n),
        get: |c| one(c.interval),
    },
    Key {
        name: "port",
        kind: "integer",
        allowed: "must be a TCP port from 1 to 65535, or 0 for any free port",
        default: "8888",
        doc: "TCP port of the newline-delimited JSON stream (0: the kernel picks one, `pocketses status` shows it)",
        set: |c, _, v| in_range(v, 0, 65_535).map(|n| c.port = n),
        get: |c| one(c.port),
    },
    Key {
        name: "bind",
        kind: "string",
        allowed: "must be an IPv4 or IPv6 address",
        default: "0.0.0.0",
        doc: "address the JSON stream listens on",
        set: |c, _, v| address(v).map(|a| c.bind = a),
        get: |c| one(c.bind.to_string()),
    },
    Key {
        name: "http.port",
        kind: "integer",
        allowed: "must be a TCP port from 1 to 65535, or 0 to turn HTTP off",
        default: "9188",
        doc: "TCP port of the HTTP endpoint (Prometheus text and JSON)",
        set: |c, _, v| in_range(v, 0, 65_535).map(|n| c.http.port = n),
        get: |c| one(c.http.port),
    },
    Key {
        name: "http.bind",
        kind: "string",
        allowed: "must be an IPv4 or IPv6 address",
        default: "0.0.0.0",
        doc: "address the HTTP endpoint listens on",
        set: |c, _, v| address(v).map(|a| c.http.bind = a),
        get: |c| one(c.http.bind.to_string()),
    },
    Key {
        name: "http.max-connections",
        kind: "integer",
        allowed: "must be a whole number from 1 to 1000000",
        default: "512",
        doc: "HTTP connections open at once; when full, the oldest idle one is closed for a newcomer",
        set: |c, _, v| in_range(v, 1, MAX_SUBSCRIBERS as i128).map(|n| c.http.max_connections = n),
        get: |c| one(c.http.max_connections),
    },
    Key {
        name: "http.max-sse",
        kind: "integer",
        allowed: "must be a whole number from 1 to 1000000",
        default: "256",
        doc: "SSE streams open at once, apart from stream subscribers and scrapes (never more than three quarters of `http.max-connections`)",
        set: |c, _, v| in_range(v, 1, MAX_SUBSCRIBERS as i128).map(|n| c.http.max_sse = n),
        get: |c| one(c.http.max_sse),
    },
    Key {
        name: "http.token",
        kind: "string",
        allowed: "must be 16 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "bearer token: HTTP requests send `Authorization: Bearer TOKEN`, stream subscribers the first line `AUTH TOKEN` (unset: no token); `pocketses status` shows it as (hidden)",
        set: |c, _, v| token(v).map(|t| c.http.token = t),
        // Read back hidden: `pocketses status` (and a bug report pasting it) never shows the token.
        get: |c| c.http.token.iter().map(|_| (String::new(), Value::from(HIDDEN))).collect(),
    },
    Key {
        name: "http.users.<user>",
        kind: "string",
        allowed: "must be a bcrypt hash ($2a$, $2b$ or $2y$, as htpasswd -B writes it)",
        default: "",
        doc: "basic-auth user of the HTTP endpoint and its bcrypt password hash, as Prometheus' exporter-toolkit takes them; `pocketses status` lists the user and shows the hash as (hidden)",
        set: |c, user, v| {
            text(v)
                .filter(|h| crate::publish::auth::valid_hash(h))
                .map(|h| drop(c.http.users.insert(user.to_string(), h.to_string())))
        },
        // Read back hidden like the token: a hash pasted into a bug report can be cracked offline.
        get: |c| c.http.users.keys().map(|u| (u.clone(), Value::from(HIDDEN))).collect(),
    },
    Key {
        name: "http.metrics-public",
        kind: "boolean",
        allowed: "must be true or false",
        default: "false",
        doc: "leave /metrics open when `http.token` or `http.users` is set, for scrapers without credentials",
        set: |c, _, v| boolean(v).map(|b| c.http.metrics_public = b),
        get: |c| one(c.http.metrics_public),
    },
    Key {
        name: "publish.max-subscribers",
        kind: "integer",
        allowed: "must be a whole number from 1 to 1000000",
        default: "10000",
        doc: "stream subscribers beyond this number are refused",
        set: |c, _, v| {
            in_range(v, 1, MAX_SUBSCRIBERS as i128).map(|n| c.publish.max_subscribers = n)
        },
        get: |c| one(c.publish.max_subscribers),
    },
    Key {
        name: "publish.format",
        kind: "string",
        allowed: "must be one of json, legacy",
        default: "json",
        doc: "JSON shape on the stream: json (the documented schema `pocketses.metrics/v1`; `v1` is an old name for it) or legacy (the original pocketses)",
        set: |c, _, v| {
            text(v)
                .and_then(|s| s.parse::<Format>().ok())
                .filter(|f| f.is_line())
                .map(|f| c.publish.format = f)
        },
        get: |c| one(c.publish.format.as_str()),
    },
    Key {
        name: "publish.remodel-events",
        kind: "boolean",
        allowed: "must be true or false",
        default: "false",
        doc: "also write remodel progress events (`{\"event\":\"remodel\",…}`) as lines on the stream; SSE always carries them",
        set: |c, _, v| boolean(v).map(|b| c.publish.remodel_events = b),
        get: |c| one(c.publish.remodel_events),
    },
    Key {
        name: "tls.cert",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "server certificate chain (PEM) of both listeners; with `tls.key`, they speak TLS (reloaded when the file changes)",
        set: |c, _, v| path(v).map(|p| c.tls.cert = Some(p)),
        get: |c| paths(&c.tls.cert),
    },
    Key {
        name: "tls.key",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "private key (PEM) of `tls.cert`",
        set: |c, _, v| path(v).map(|p| c.tls.key = Some(p)),
        get: |c| paths(&c.tls.key),
    },
    Key {
        name: "tls.client-ca",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "CA certificates (PEM): clients of both listeners must present a certificate they signed, which also stands for the token",
        set: |c, _, v| path(v).map(|p| c.tls.client_ca = Some(p)),
        get: |c| paths(&c.tls.client_ca),
    },
    Key {
        name: "limits.per-source",
        kind: "integer",
        allowed: "must be a whole number from 1 to 1000000",
        default: "64",
        doc: "connections one source address (an IPv6 /64) may hold at once, both listeners together",
        set: |c, _, v| in_range(v, 1, MAX_SUBSCRIBERS as i128).map(|n| c.limits.per_source = n),
        get: |c| one(c.limits.per_source),
    },
    Key {
        name: "fleet.url",
        kind: "string",
        allowed: "must be an http:// or https:// URL without credentials, query or fragment",
        default: "",
        doc: "the fleet server (hawkBit DDI, such as gooseBit): the device polls `URL/TENANT/controller/v1/ID` (docs/fleet.md)",
        set: |c, _, v| text(v).and_then(fleet_url).map(|u| c.fleet.url = Some(u)),
        get: |c| c.fleet.url.iter().map(|u| (String::new(), Value::from(u.as_str()))).collect(),
    },
    Key {
        name: "fleet.ca",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "CA certificates (PEM) the fleet server's certificate must chain to, for a private CA (default: the system's roots)",
        set: |c, _, v| path(v).map(|p| c.fleet.ca = Some(p)),
        get: |c| paths(&c.fleet.ca),
    },
    Key {
        name: "fleet.tenant",
        kind: "string",
        allowed: "must be 1 to 64 letters, digits, '-' or '_'",
        default: "DEFAULT",
        doc: "hawkBit tenant in the DDI paths",
        set: |c, _, v| text(v).filter(|t| tenant(t)).map(|t| c.fleet.tenant = t.to_string()),
        get: |c| one(c.fleet.tenant.as_str()),
    },
    Key {
        name: "fleet.controller-id",
        kind: "string",
        allowed: "must be 1 to 128 letters, digits, '.', '_', ':' or '-', not starting with '.'",
        default: "",
        doc: "the device's controller id on the fleet server (unset: the serial of snapd's serial assertion, else brand-model-hostname)",
        set: |c, _, v| {
            text(v).filter(|t| controller_id(t)).map(|t| c.fleet.controller_id = Some(t.to_string()))
        },
        get: |c| c.fleet.controller_id.iter().map(|t| (String::new(), Value::from(t.as_str()))).collect(),
    },
    Key {
        name: "fleet.token",
        kind: "string",
        allowed: "must be 1 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "hawkBit target security token, sent as `Authorization: TargetToken …` (never across origins); shown as (hidden)",
        set: |c, _, v| fleet_token(v).map(|t| c.fleet.token = Some(t)),
        get: |c| c.fleet.token.iter().map(|_| (String::new(), Value::from(HIDDEN))).collect(),
    },
    Key {
        name: "fleet.gateway-token",
        kind: "string",
        allowed: "must be 1 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "hawkBit gateway security token, sent as `Authorization: GatewayToken …`, instead of `fleet.token`; shown as (hidden)",
        set: |c, _, v| fleet_token(v).map(|t| c.fleet.gateway_token = Some(t)),
        get: |c| c.fleet.gateway_token.iter().map(|_| (String::new(), Value::from(HIDDEN))).collect(),
    },
    Key {
        name: "fleet.trusted-keys",
        kind: "string",
        allowed: "must be ed25519 public keys (base64, as `pocketses key export` prints them) separated by spaces or commas, or one file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "operator keys a bundle's signature must verify with before anything in it is read",
        set: |c, _, v| text(v).and_then(trusted_keys).map(|t| c.fleet.trusted_keys = Some(t)),
        get: |c| {
            c.fleet
                .trusted_keys
                .iter()
                .map(|t| {
                    let text = match t {
                        TrustedKeys::Keys(keys) => keys.join(" "),
                        TrustedKeys::File(path) => path.to_string_lossy().into_owned(),
                    };
                    (String::new(), Value::from(text))
                })
                .collect()
        },
    },
    Key {
        name: "fleet.enabled",
        kind: "boolean",
        allowed: "must be true or false",
        default: "false",
        doc: "whether the daemon polls the fleet server (needs `fleet.url` and `fleet.trusted-keys`)",
        set: |c, _, v| boolean(v).map(|b| c.fleet.enabled = b),
        get: |c| one(c.fleet.enabled),
    },
    Key {
        name: "log.level",
        kind: "string",
        allowed: "must be one of error, warn, info, debug, trace",
        default: "info",
        doc: "daemon log level, applied live; `RUST_LOG`, when set, overrides it",
        set: |c, _, v| {
            text(v).filter(|s| LOG_LEVELS.contains(s)).map(|s| c.log_level = s.to_string())
        },
        get: |c| one(c.log_level.as_str()),
    },
    Key {
        name: SCHEMA_VERSION_KEY,
        kind: "integer",
        allowed: "must be a whole number from 1",
        default: "1",
        doc: "written by the post-refresh hook: the configuration schema of the installed revision; do not set",
        set: |_, _, v| in_range::<u64>(v, 1, i128::from(u32::MAX)).map(drop),
        get: |_| one(SCHEMA_VERSION),
    },
    Key {
        name: "checks.<check>.warn",
        kind: "string",
        allowed: "must be a Nagios range such as 85, 10:, ~:10, 10:20 or @10:20",
        default: "",
        doc: "range of values that makes check `<check>` WARN (each check's default is in docs/checks.md)",
        set: |c, name, v| range(v).map(|r| check_mut(c, name).warn = Some(r)),
        get: |c| per_check(c, |cc| cc.warn.map(|r| r.to_string())),
    },
    Key {
        name: "checks.<check>.crit",
        kind: "string",
        allowed: "must be a Nagios range such as 95, 10:, ~:10, 10:20 or @10:20",
        default: "",
        doc: "range of values that makes check `<check>` CRIT (each check's default is in docs/checks.md)",
        set: |c, name, v| range(v).map(|r| check_mut(c, name).crit = Some(r)),
        get: |c| per_check(c, |cc| cc.crit.map(|r| r.to_string())),
    },
    Key {
        name: "checks.<check>.failures-before-critical",
        kind: "integer",
        allowed: "must be a whole number from 1 to 100",
        default: "",
        doc: "non-OK results in a row before check `<check>` leaves OK (3 unless set)",
        set: |c, name, v| {
            in_range(v, 1, i128::from(MAX_RESULTS_IN_A_ROW))
                .map(|n| check_mut(c, name).failures_before_critical = Some(n))
        },
        get: |c| per_check(c, |cc| cc.failures_before_critical),
    },
    Key {
        name: "checks.<check>.successes-before-ok",
        kind: "integer",
        allowed: "must be a whole number from 1 to 100",
        default: "",
        doc: "OK results in a row before check `<check>` returns to OK (1 unless set)",
        set: |c, name, v| {
            in_range(v, 1, i128::from(MAX_RESULTS_IN_A_ROW))
                .map(|n| check_mut(c, name).successes_before_ok = Some(n))
        },
        get: |c| per_check(c, |cc| cc.successes_before_ok),
    },
    Key {
        name: "checks.<check>.enabled",
        kind: "boolean",
        allowed: "must be true or false",
        default: "",
        doc: "whether check `<check>` runs (every built-in check does unless set to false)",
        set: |c, name, v| boolean(v).map(|b| check_mut(c, name).enabled = Some(b)),
        get: |c| per_check(c, |cc| cc.enabled),
    },
    Key {
        name: "push.<name>.url",
        kind: "string",
        allowed: "must be an http:// or https:// URL with a host",
        default: "",
        doc: "where sink `<name>` POSTs its batches: InfluxDB `http://host:8086/write?db=DB` (1.x) or `…/api/v2/write?org=ORG&bucket=B` (2.x), Prometheus remote write `…/api/v1/write`, or any URL taking `pocketses.metrics/v1` documents; needs `push.<name>.format` (docs/push.md)",
        set: |c, name, v| push_url(v).map(|u| sink_mut(c, name).url = Some(u)),
        get: |c| per_sink(c, |s| s.url.clone()),
    },
    Key {
        name: "push.<name>.format",
        kind: "string",
        allowed: "must be one of influx, prometheus, json",
        default: "",
        doc: "what sink `<name>` sends: influx (line protocol, gzip), prometheus (remote write 1.0, snappy) or json (`pocketses.metrics/v1` lines)",
        set: |c, name, v| {
            text(v).and_then(SinkFormat::parse).map(|f| sink_mut(c, name).format = Some(f))
        },
        get: |c| per_sink(c, |s| s.format.map(SinkFormat::as_str)),
    },
    Key {
        name: "push.<name>.token",
        kind: "string",
        allowed: "must be 1 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "sent as `Authorization: Token …` to InfluxDB 2.x (`/api/v2/` URLs) and as `Authorization: Bearer …` to the others; `pocketses status` shows it as (hidden)",
        set: |c, name, v| push_token(v).map(|t| sink_mut(c, name).token = Some(t)),
        get: |c| per_sink(c, |s| s.token.as_ref().map(|_| HIDDEN)),
    },
    Key {
        name: "push.<name>.username",
        kind: "string",
        allowed: "must be 1 to 256 printable characters without a colon",
        default: "",
        doc: "basic-auth user of sink `<name>` (InfluxDB 1.x); needs `push.<name>.password`",
        set: |c, name, v| push_username(v).map(|u| sink_mut(c, name).username = Some(u)),
        get: |c| per_sink(c, |s| s.username.clone()),
    },
    Key {
        name: "push.<name>.password",
        kind: "string",
        allowed: "must be 1 to 4096 printable characters",
        default: "",
        doc: "basic-auth password of sink `<name>`; `pocketses status` shows it as (hidden)",
        set: |c, name, v| push_password(v).map(|p| sink_mut(c, name).password = Some(p)),
        get: |c| per_sink(c, |s| s.password.as_ref().map(|_| HIDDEN)),
    },
    Key {
        name: "push.<name>.interval",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 86400",
        default: "",
        doc: "seconds between two snapshots sent to sink `<name>` (unset: every snapshot, at `interval`)",
        set: |c, name, v| {
            in_range(v, 1, i128::from(MAX_INTERVAL)).map(|n| sink_mut(c, name).interval = Some(n))
        },
        get: |c| per_sink(c, |s| s.interval),
    },
    Key {
        name: "push.<name>.batch",
        kind: "integer",
        allowed: "must be a whole number from 1 to 10000",
        default: "",
        doc: "snapshots per request to sink `<name>` (60 unless set); a backlog is sent in batches this size",
        set: |c, name, v| {
            in_range(v, 1, i128::from(MAX_PUSH_BATCH)).map(|n| sink_mut(c, name).batch = Some(n))
        },
        get: |c| per_sink(c, |s| s.batch),
    },
    Key {
        name: "push.<name>.tags",
        kind: "string",
        allowed: "must be a comma-separated list of key=value, keys of letters, digits and _ not starting with a digit or __, values not empty and without , or =",
        default: "",
        doc: "extra tags (labels) on every point sent to sink `<name>`, such as `site=lab,rack=4`",
        set: |c, name, v| tags(v).map(|t| sink_mut(c, name).tags = t),
        get: |c| {
            c.push
                .iter()
                .filter(|(_, s)| !s.tags.is_empty())
                .map(|(name, s)| (name.clone(), Value::from(render_tags(&s.tags))))
                .collect()
        },
    },
    Key {
        name: "push.<name>.ca",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "CA certificates (PEM) that sign the https store's certificate, used instead of the system's",
        set: |c, name, v| path(v).map(|p| sink_mut(c, name).ca = Some(p)),
        get: |c| per_sink(c, |s| s.ca.as_ref().map(|p| p.to_string_lossy().into_owned())),
    },
    Key {
        name: "push.<name>.spool.max-bytes",
        kind: "integer",
        allowed: "must be a whole number of bytes from 65536 to 1099511627776",
        default: "",
        doc: "size of sink `<name>`'s spool on disk (64 MiB unless set); past it the oldest records are dropped and counted",
        set: |c, name, v| {
            in_range(v, 65_536, 1 << 40).map(|n| sink_mut(c, name).spool_max_bytes = Some(n))
        },
        get: |c| per_sink(c, |s| s.spool_max_bytes),
    },
    Key {
        name: "push.<name>.spool.max-age",
        kind: "string",
        allowed: "must be a duration from 1m to 365d, such as 3600, 90m, 12h or 7d",
        default: "",
        doc: "spooled records older than this are dropped and counted (unset: only `spool.max-bytes` bounds the spool)",
        set: |c, name, v| duration(v).map(|n| sink_mut(c, name).spool_max_age = Some(n)),
        get: |c| per_sink(c, |s| s.spool_max_age),
    },
    Key {
        name: "push.<name>.enabled",
        kind: "boolean",
        allowed: "must be true or false",
        default: "",
        doc: "whether sink `<name>` spools and sends (true unless set); false keeps what is spooled",
        set: |c, name, v| boolean(v).map(|b| sink_mut(c, name).enabled = Some(b)),
        get: |c| per_sink(c, |s| s.enabled),
    },
    Key {
        name: "notify.webhook.url",
        kind: "string",
        allowed: "must be an http:// or https:// URL with a host",
        default: "",
        doc: "where every change of a check's state is POSTed as one JSON document, spooled and retried like a push sink's batches (docs/checks.md)",
        set: |c, _, v| push_url(v).map(|u| c.notify.webhook.url = Some(u)),
        get: |c| {
            c.notify.webhook.url.iter().map(|u| (String::new(), Value::from(u.as_str()))).collect()
        },
    },
    Key {
        name: "notify.webhook.token",
        kind: "string",
        allowed: "must be 1 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "sent with each notification as `Authorization: Bearer …`; `pocketses status` shows it as (hidden)",
        set: |c, _, v| push_token(v).map(|t| c.notify.webhook.token = Some(t)),
        get: |c| {
            c.notify.webhook.token.iter().map(|_| (String::new(), Value::from(HIDDEN))).collect()
        },
    },
    Key {
        name: "notify.webhook.ca",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "CA certificates (PEM) that sign the https webhook's certificate, used instead of the system's",
        set: |c, _, v| path(v).map(|p| c.notify.webhook.ca = Some(p)),
        get: |c| paths(&c.notify.webhook.ca),
    },
    Key {
        name: "hub.spokes",
        kind: "string",
        allowed: "must be a comma-separated list of http:// or https:// URLs with a host (at most 1000)",
        default: "",
        doc: "other pocketses daemons (`http://host:9188`) or any URL serving `pocketses.metrics/v1` documents: polled at `hub.interval`, their points tagged `spoke=HOST:PORT` and sent through every push sink (docs/push.md)",
        set: |c, _, v| spokes(v).map(|s| c.hub.spokes = s),
        get: |c| {
            if c.hub.spokes.is_empty() {
                return Vec::new();
            }
            one(c.hub.spokes.join(","))
        },
    },
    Key {
        name: "hub.interval",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 86400",
        default: "",
        doc: "seconds between two polls of each spoke (unset: `interval`)",
        set: |c, _, v| in_range(v, 1, i128::from(MAX_INTERVAL)).map(|n| c.hub.interval = Some(n)),
        get: |c| c.hub.interval.map(one).unwrap_or_default(),
    },
    Key {
        name: "hub.timeout",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 300",
        default: "10",
        doc: "seconds a spoke has to answer a poll; a spoke that does not is reported down",
        set: |c, _, v| in_range(v, 1, 300).map(|n| c.hub.timeout = Some(n)),
        get: |c| one(c.hub.timeout.unwrap_or(DEFAULT_HUB_TIMEOUT)),
    },
    Key {
        name: "hub.token",
        kind: "string",
        allowed: "must be 16 to 4096 printable ASCII characters without spaces",
        default: "",
        doc: "bearer token sent to every spoke, for spokes whose `http.token` is set; `pocketses status` shows it as (hidden)",
        set: |c, _, v| token(v).map(|t| c.hub.token = t),
        get: |c| c.hub.token.iter().map(|_| (String::new(), Value::from(HIDDEN))).collect(),
    },
    Key {
        name: "hub.ca",
        kind: "string",
        allowed: "must be a file path (relative: in $SNAP_COMMON)",
        default: "",
        doc: "CA certificates (PEM) that sign the https spokes' certificates, used instead of the system's",
        set: |c, _, v| path(v).map(|p| c.hub.ca = Some(p)),
        get: |c| paths(&c.hub.ca),
    },
    Key {
        name: "hub.ingest",
        kind: "boolean",
        allowed: "must be true or false",
        default: "false",
        doc: "whether `POST /v1/ingest` takes `pocketses.metrics/v1` documents (from spokes' json sinks) and sends them through every push sink; with the HTTP credentials (`http.token`, `http.users.*`) when they are set",
        set: |c, _, v| boolean(v).map(|b| c.hub.ingest = b),
        get: |c| one(c.hub.ingest),
    },
    Key {
        name: "collectors.<collector>.interval",
        kind: "integer",
        allowed: "must be a whole number of seconds from 1 to 86400, for cpu, memory, network, filesystems, temperatures or load",
        default: "",
        doc: "seconds between two readings of collector `<collector>` kept in snapshots (unset: every collection); snapshots in between leave the group out, so sinks get no repeated readings",
        set: |c, name, v| {
            let n = in_range(v, 1, i128::from(MAX_INTERVAL))?;
            collector_mut(c, name).map(|cc| cc.interval = Some(n))
        },
        get: |c| per_collector(c, |cc| cc.interval),
    },
    Key {
        name: "collectors.<collector>.enabled",
        kind: "boolean",
        allowed: "must be true or false, for cpu, memory, network, filesystems, temperatures or load",
        default: "",
        doc: "whether collector `<collector>` is read at all (true unless set); a disabled one is missing from every snapshot",
        set: |c, name, v| {
            let b = boolean(v)?;
            collector_mut(c, name).map(|cc| cc.enabled = Some(b))
        },
        get: |c| per_collector(c, |cc| cc.enabled),
    },
];

/// The settings of collector group `name`; `None` when no group has that name.
fn collector_mut<'a>(c: &'a mut Config, name: &str) -> Option<&'a mut CollectorConfig> {
    COLLECTORS.contains(&name).then(|| c.collectors.entry(name.to_string()).or_default())
}

/// One entry per collector group that has `field` set.
fn per_collector<T: Into<Value>>(
    c: &Config,
    field: impl Fn(&CollectorConfig) -> Option<T>,
) -> Vec<(String, Value)> {
    c.collectors
        .iter()
        .filter_map(|(name, cc)| field(cc).map(|v| (name.clone(), v.into())))
        .collect()
}

/// `hub.spokes`: URLs separated by commas (spaces around them ignored), or a JSON list of them.
/// An empty text is no spokes. \[pure\]
fn spokes(value: &Value) -> Option<Vec<String>> {
    let items: Vec<String> = match value {
        Value::String(s) => {
            s.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect()
        }
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(|s| s.trim().to_string())).collect::<Option<_>>()?
        }
        _ => return None,
    };
    if items.len() > MAX_SPOKES {
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let url = push_url(&Value::from(item.as_str()))?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Some(out)
}

/// The settings of sink `name`, created empty on first use.
fn sink_mut<'a>(c: &'a mut Config, name: &str) -> &'a mut SinkConfig {
    c.push.entry(name.to_string()).or_default()
}

/// One entry per sink that has `field` set.
fn per_sink<T: Into<Value>>(
    c: &Config,
    field: impl Fn(&SinkConfig) -> Option<T>,
) -> Vec<(String, Value)> {
    c.push.iter().filter_map(|(name, s)| field(s).map(|v| (name.clone(), v.into()))).collect()
}

/// An `http://` or `https://` URL with a host. \[pure\]
fn push_url(value: &Value) -> Option<String> {
    let text = text(value)?.trim();
    let uri: hyper::Uri = text.parse().ok()?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme_ok && uri.host().is_some_and(|h| !h.is_empty())).then(|| text.to_string())
}

fn push_token(value: &Value) -> Option<String> {
    text(value)
        .filter(|t| (1..=4096).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

fn push_username(value: &Value) -> Option<String> {
    text(value)
        .filter(|u| (1..=256).contains(&u.chars().count()))
        .filter(|u| u.chars().all(|ch| !ch.is_control() && ch != ':'))
        .map(str::to_string)
}

fn push_password(value: &Value) -> Option<String> {
    text(value)
        .filter(|p| (1..=4096).contains(&p.chars().count()))
        .filter(|p| p.chars().all(|ch| !ch.is_control()))
        .map(str::to_string)
}

/// Whether `name` may name a push sink (it names a spool directory too): 1 to 64 lowercase
/// letters, digits and dashes, starting with a letter or digit, as snapd's key segments. \[pure\]
pub fn valid_sink_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// A tag key that InfluxDB and Prometheus both take without escaping. \[pure\]
fn valid_tag_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.starts_with("__")
}

/// `push.<name>.tags`: `key=value` pairs separated by commas (spaces around them are ignored), or
/// a JSON list of `key=value` strings; an empty text is no tags. Keys are unique. \[pure\]
fn tags(value: &Value) -> Option<Vec<(String, String)>> {
    let items: Vec<String> = match value {
        Value::String(s) => {
            s.split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_string).collect()
        }
        Value::Array(list) => {
            list.iter().map(|v| v.as_str().map(|s| s.trim().to_string())).collect::<Option<_>>()?
        }
        _ => return None,
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        let (key, val) = item.split_once('=')?;
        let (key, val) = (key.trim(), val.trim());
        let val_ok =
            !val.is_empty() && val.chars().all(|ch| !ch.is_control() && ch != ',' && ch != '=');
        if !valid_tag_key(key) || !val_ok || out.iter().any(|(k, _)| k == key) {
            return None;
        }
        out.push((key.to_string(), val.to_string()));
    }
    Some(out)
}

/// The text form of tags, as `push.<name>.tags` takes it. \[pure\]
pub fn render_tags(tags: &[(String, String)]) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A duration in whole seconds, from 60 s to 365 days: a number of seconds, or a number with a
/// unit `s`, `m`, `h` or `d` (`90m`, `7d`). \[pure\]
fn duration(value: &Value) -> Option<u64> {
    let seconds = match value {
        Value::Number(_) => u64::try_from(whole(value)?).ok()?,
        Value::String(s) => {
            let s = s.trim();
            let (digits, unit) = match s.char_indices().find(|(_, ch)| !ch.is_ascii_digit()) {
                Some((i, _)) => (&s[..i], &s[i..]),
                None => (s, "s"),
            };
            let n: u64 = digits.parse().ok()?;
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return None,
            };
            n.checked_mul(scale)?
        }
        _ => return None,
    };
    (60..=365 * 86_400).contains(&seconds).then_some(seconds)
}

/// Largest `checks.<check>.failures-before-critical` and `successes-before-ok`.
pub const MAX_RESULTS_IN_A_ROW: u32 = 100;

/// The settings of check `name`, created empty on first use.
fn check_mut<'a>(c: &'a mut Config, name: &str) -> &'a mut CheckConfig {
    c.checks.entry(name.to_string()).or_default()
}

/// One entry per check that has `field` set.
fn per_check<T: Into<Value>>(
    c: &Config,
    field: impl Fn(&CheckConfig) -> Option<T>,
) -> Vec<(String, Value)> {
    c.checks.iter().filter_map(|(name, cc)| field(cc).map(|v| (name.clone(), v.into()))).collect()
}

/// A Nagios range, given as text (`"10:20"`) or as a plain JSON number (`85`).
fn range(value: &Value) -> Option<Range> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// Prefixes kept for features that come later; keys under them are accepted and not yet used.
pub const RESERVED_PREFIXES: &[&str] = &[];

/// The documented key that the dotted `name` is (`http.users.alice` is `http.users.<user>`).
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.matches(name).is_some())
}

/// The documented keys inside the object `name` (`http` holds `http.port`, …; `http.users`
/// holds `http.users.<user>`); empty when `name` is not such an object.
fn group_keys(name: &str) -> Vec<&'static str> {
    let have: Vec<&str> = name.split('.').collect();
    KEYS.iter()
        .filter(|k| {
            let want: Vec<&str> = k.name.split('.').collect();
            want.len() > have.len()
                && want.iter().zip(&have).all(|(w, h)| w == h || w.starts_with('<'))
        })
        .map(|k| k.name)
        .collect()
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The built-in default.
    Default,
    /// snapd's configuration (`snap set`).
    Snapd,
    /// A command-line flag of the daemon (`--set KEY=VALUE`, `--port`, …).
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

/// Where each value's concrete dotted key came from; keys not listed are defaults.
pub type Sources = BTreeMap<String, Source>;

/// A checked configuration with provenance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Source of each concrete key set by snapd or a flag; the others are defaults.
    pub sources: Sources,
    /// Keys present in snapd that pocketses does not use (dotted).
    pub unknown: Vec<String>,
}

impl Loaded {
    /// Where the concrete dotted `key` came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// Every effective value, as `(concrete key, value, source)`, in [`KEYS`] order, without
    /// `schema-version` (which is bookkeeping, not configuration).
    pub fn effective(&self) -> Vec<(String, Value, Source)> {
        KEYS.iter()
            .filter(|k| k.name != SCHEMA_VERSION_KEY)
            .flat_map(|k| {
                (k.get)(&self.config).into_iter().map(|(segment, value)| {
                    let name = k.concrete(&segment);
                    let source = self.source(&name);
                    (name, value, source)
                })
            })
            .collect()
    }
}

/// The table of keys for README.md and docs/configuration.md (a test keeps them in step).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| key | type | allowed values | default | what it does |\n|---|---|---|---|---|\n",
    );
    for k in KEYS {
        let allowed = k.allowed.trim_start_matches("must be ");
        let default =
            if k.default.is_empty() { "none".to_string() } else { format!("`{}`", k.default) };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name, k.kind, allowed, default, k.doc
        ));
    }
    out
}

/// Settings given on the daemon's command line, as `(dotted key, value)` in the order given.
/// They are a configuration source like snapd: the same keys, the same checks, the same messages.
pub type Settings = Vec<(String, Value)>;

/// Parses one `--set KEY=VALUE`. The value is read as `snap set` reads it: JSON when it parses
/// as JSON (`30`, `true`, `{"a":1}`), else the text itself (`v1`, `127.0.0.1`).
///
/// # Errors
/// When there is no `=` or no key, in snapd's grammar.
pub fn parse_setting(arg: &str) -> Result<(String, Value), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!("invalid configuration: {} (want key=value)", quote(arg)));
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("invalid option name: {}", quote(key)));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// Nests dotted settings into a document like snapd's (`http.port=1` → `{"http":{"port":1}}`);
/// a later setting of the same key wins.
pub fn document_of(settings: &[(String, Value)]) -> Value {
    fn insert(map: &mut serde_json::Map<String, Value>, parts: &[&str], value: &Value) {
        match parts {
            [] => {}
            [last] => {
                map.insert((*last).to_string(), value.clone());
            }
            [first, rest @ ..] => {
                let slot = map.entry((*first).to_string()).or_insert(Value::Null);
                if !slot.is_object() {
                    *slot = Value::Object(serde_json::Map::new());
                }
                if let Value::Object(inner) = slot {
                    insert(inner, rest, value);
                }
            }
        }
    }
    let mut doc = serde_json::Map::new();
    for (key, value) in settings {
        let parts: Vec<&str> = key.split('.').collect();
        insert(&mut doc, &parts, value);
    }
    Value::Object(doc)
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

/// A file path; relative ones are kept as given (the listeners resolve them).
fn path(value: &Value) -> Option<PathBuf> {
    text(value).filter(|s| !s.is_empty() && !s.contains('\0')).map(PathBuf::from)
}

fn paths(path: &Option<PathBuf>) -> Vec<(String, Value)> {
    path.iter().map(|p| (String::new(), Value::from(p.to_string_lossy().into_owned()))).collect()
}

/// What a secret key (`http.token`) reads back as, once set.
pub const HIDDEN: &str = "(hidden)";

/// A bearer token: 16 to 4096 visible ASCII characters, which an HTTP header and the stream's
/// `AUTH` line both carry as they are.
fn token(value: &Value) -> Option<Option<String>> {
    text(value)
        .filter(|t| (16..=4096).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(|t| Some(t.to_string()))
}

/// `fleet.url`: scheme http or https, a host (a name, IPv4, or IPv6 in brackets), an optional
/// port and path; no user information, query or fragment (a token belongs in `fleet.token`).
/// A final `/` is dropped.
fn fleet_url(text: &str) -> Option<String> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"))?;
    let bad = |b: u8| !b.is_ascii_graphic() || matches!(b, b'?' | b'#' | b'@' | b'\\');
    if text.len() > 2048 || text.bytes().any(bad) {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            addr.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => (addr, None),
                _ => (addr, Some(after.strip_prefix(':')?)),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    (host_ok && port_ok).then(|| text.trim_end_matches('/').to_string())
}

/// `fleet.tenant`: a word that goes into a URL path as it is.
fn tenant(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A hawkBit controller id that goes into a URL path as it is.
fn controller_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn fleet_token(value: &Value) -> Option<String> {
    text(value)
        .filter(|t| (1..=4096).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

/// `fleet.trusted-keys`: every word a valid key, or else one word that is a file path. A word
/// shaped like a key (44 characters ending in `=`) that is not one is refused, not taken for a
/// file name.
fn trusted_keys(text: &str) -> Option<TrustedKeys> {
    let looks_like_key = |w: &str| w.len() == 44 && w.ends_with('=');
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    let is_key = |w: &str| crate::fleet::bundle::parse_public_key(w).is_ok();
    if !words.is_empty() && words.iter().all(|w| is_key(w)) {
        return Some(TrustedKeys::Keys(words.iter().map(|w| (*w).to_string()).collect()));
    }
    match words.as_slice() {
        [one] if !looks_like_key(one) && !one.contains('\0') => {
            Some(TrustedKeys::File(PathBuf::from(one)))
        }
        _ => None,
    }
}

fn address(value: &Value) -> Option<IpAddr> {
    text(value).and_then(|s| s.parse().ok())
}

/// Applies one source's document on top of `loaded`, recording `source` for each key it sets;
/// pushes every problem. Unknown keys are kept in `unknown` when `source` is snapd and refused
/// when it is a flag (a typo on a command line is not a key for later).
fn layer(loaded: &mut Loaded, doc: &Value, source: Source, problems: &mut Vec<Problem>) {
    let flat = flatten(doc);
    for (name, value) in &flat {
        let names = group_keys(name);
        if !names.is_empty() {
            // A scalar where an object of keys belongs (`snap set pocketses http=5`).
            problems.push(Problem {
                key: name.clone(),
                allowed: format!("must hold the keys {}", names.join(", ")),
                given: given(value),
            });
            continue;
        }
        let Some((spec, segment)) = KEYS.iter().find_map(|k| k.matches(name).map(|s| (k, s)))
        else {
            if source == Source::Flag {
                problems.push(Problem {
                    key: name.clone(),
                    allowed: "must be a known key (see `pocketses daemon --help`)".to_string(),
                    given: given(value),
                });
            } else {
                loaded.unknown.push(name.clone());
            }
            continue;
        };
        match (spec.set)(&mut loaded.config, segment, value) {
            Some(()) => {
                loaded.sources.insert(name.clone(), source);
            }
            None => problems.push(Problem {
                key: name.clone(),
                allowed: spec.allowed.to_string(),
                given: given(value),
            }),
        }
    }
}

/// Rules that span keys, checked on the merged result.
fn cross_check(loaded: &Loaded, problems: &mut Vec<Problem>) {
    let config = &loaded.config;
    let tls = &config.tls;
    for (key, set, needs, other) in [
        ("tls.cert", &tls.cert, "tls.key", &tls.key),
        ("tls.key", &tls.key, "tls.cert", &tls.cert),
        ("tls.client-ca", &tls.client_ca, "tls.cert", &tls.cert),
    ] {
        if let (Some(path), None) = (set, other) {
            problems.push(Problem {
                key: key.to_string(),
                allowed: format!("must come with \"{needs}\""),
                given: path.display().to_string(),
            });
        }
    }
    cross_check_notify(&config.notify, problems);
    let fleet = &config.fleet;
    let problem = |key: &str, allowed: &str, given: String| Problem {
        key: key.to_string(),
        allowed: allowed.to_string(),
        given,
    };
    if fleet.enabled && fleet.url.is_none() {
        problems.push(problem("fleet.enabled", "must come with \"fleet.url\"", "true".into()));
    }
    if fleet.enabled && fleet.trusted_keys.is_none() {
        problems.push(problem(
            "fleet.enabled",
            "must come with \"fleet.trusted-keys\" (bundles are applied only when signed by them)",
            "true".into(),
        ));
    }
    if fleet.token.is_some() && fleet.gateway_token.is_some() {
        problems.push(problem(
            "fleet.gateway-token",
            "must not be set together with \"fleet.token\"",
            HIDDEN.into(),
        ));
    }
    if let Some(ca) = &fleet.ca {
        if !fleet.url.as_deref().is_some_and(|u| u.starts_with("https://")) {
            problems.push(problem(
                "fleet.ca",
                "must come with an https:// \"fleet.url\"",
                ca.display().to_string(),
            ));
        }
    }
    if let Some(ca) = &config.hub.ca {
        if !config.hub.spokes.iter().any(|u| u.starts_with("https://")) {
            problems.push(problem(
                "hub.ca",
                "must come with an https:// spoke in \"hub.spokes\"",
                ca.display().to_string(),
            ));
        }
    }
    for (name, sink) in &config.push {
        cross_check_sink(name, sink, problems);
    }
    if config.http.port != 0 && config.http.port == config.port {
        // Blame the key set last by the stronger source, else `http.port`.
        let http_set = loaded.source("http.port") >= loaded.source("port");
        problems.push(Problem {
            key: if http_set { "http.port" } else { "port" }.to_string(),
            allowed: if http_set {
                format!("must differ from \"port\" ({})", config.port)
            } else {
                format!("must differ from \"http.port\" ({})", config.http.port)
            },
            given: config.port.to_string(),
        });
    }
}

/// "an influx", "a prometheus", "a json".
fn article(format: SinkFormat) -> String {
    match format {
        SinkFormat::Influx => "an influx".to_string(),
        other => format!("a {}", other.as_str()),
    }
}

/// The webhook's keys together: `token` and `ca` need the `url`, `ca` an https one.
fn cross_check_notify(notify: &NotifyConfig, problems: &mut Vec<Problem>) {
    let webhook = &notify.webhook;
    let url = webhook.url.as_deref();
    let mut problem = |key: &str, allowed: &str, given: String| {
        problems.push(Problem { key: key.to_string(), allowed: allowed.to_string(), given });
    };
    if webhook.token.is_some() && url.is_none() {
        problem("notify.webhook.token", "must come with \"notify.webhook.url\"", HIDDEN.into());
    }
    if let Some(ca) = &webhook.ca {
        let given = ca.display().to_string();
        match url {
            None => problem("notify.webhook.ca", "must come with \"notify.webhook.url\"", given),
            Some(url) if !url.starts_with("https://") => problem(
                "notify.webhook.ca",
                "must come with an https:// \"notify.webhook.url\"",
                given,
            ),
            Some(_) => {}
        }
    }
}

/// The rules of one sink's keys together.
fn cross_check_sink(name: &str, sink: &SinkConfig, problems: &mut Vec<Problem>) {
    let full = |field: &str| format!("push.{name}.{field}");
    let mut problem = |field: &str, allowed: String, given: String| {
        problems.push(Problem { key: full(field), allowed, given });
    };
    if !valid_sink_name(name) {
        problem(
            "url",
            format!(
                "must be under a sink name of lowercase letters, digits and dashes (not {})",
                quote(name)
            ),
            sink.url.clone().unwrap_or_default(),
        );
        return;
    }
    match (&sink.url, sink.format) {
        (Some(url), None) => {
            problem("url", format!("must come with {}", quote(&full("format"))), url.clone());
        }
        (None, _) => {
            // Some other key of this sink is set: blame the first one, in table order, with the
            // value it reads back as (secrets hidden).
            let alone = Config {
                push: BTreeMap::from([(name.to_string(), sink.clone())]),
                ..Config::default()
            };
            let first = KEYS.iter().find_map(|k| {
                let field = k.name.strip_prefix("push.<name>.")?;
                let (_, value) = (k.get)(&alone).into_iter().next()?;
                Some((field, given(&value)))
            });
            if let Some((field, value)) = first {
                problem(field, format!("must come with {}", quote(&full("url"))), value);
            }
        }
        (Some(_), Some(_)) => {}
    }
    match (&sink.username, &sink.password) {
        (Some(user), None) => {
            problem(
                "username",
                format!("must come with {}", quote(&full("password"))),
                user.clone(),
            );
        }
        (None, Some(_)) => problem(
            "password",
            format!("must come with {}", quote(&full("username"))),
            HIDDEN.to_string(),
        ),
        _ => {}
    }
    if sink.token.is_some() && sink.username.is_some() {
        problem(
            "token",
            format!(
                "must not be set with {} (one kind of credentials per sink)",
                quote(&full("username"))
            ),
            HIDDEN.to_string(),
        );
    }
    if let (Some(format), false) = (sink.format, sink.tags.is_empty()) {
        if let Err(err) = crate::push::encode::check_tags(format, &sink.tags) {
            let why = match err {
                crate::push::encode::Error::BadTag { key, reason, .. } => {
                    format!("must be tags {} sink can carry ({key:?}: {reason})", article(format))
                }
                other => other.to_string(),
            };
            problem("tags", why, render_tags(&sink.tags));
        }
    }
    if let (Some(ca), Some(url)) = (&sink.ca, &sink.url) {
        if !url.starts_with("https://") {
            problem(
                "ca",
                format!("must come with an https:// {}", quote(&full("url"))),
                ca.display().to_string(),
            );
        }
    }
}

/// Reads the configuration from its sources: defaults, then snapd's document, then the daemon's
/// command-line settings (which win). Both sources pass the same checks.
///
/// # Errors
/// Every problem of every source, snapd's first, each in its source's key order.
pub fn load(snapd: &Value, flags: &[(String, Value)]) -> Result<Loaded, Vec<Problem>> {
    let mut loaded = Loaded::default();
    let mut problems = Vec::new();
    layer(&mut loaded, snapd, Source::Snapd, &mut problems);
    layer(&mut loaded, &document_of(flags), Source::Flag, &mut problems);
    if problems.is_empty() {
        cross_check(&loaded, &mut problems);
    }
    // Report in KEYS order, as the configure hook always has.
    problems.sort_by_key(|p| {
        KEYS.iter().position(|k| k.matches(&p.key).is_some()).unwrap_or(usize::MAX)
    });
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// Reads the snapd document alone: the checked configuration, or every problem found.
///
/// # Errors
/// All the problems, one per bad key, in [`KEYS`] order.
pub fn from_document(doc: &Value) -> Result<Loaded, Vec<Problem>> {
    load(doc, &[])
}

/// Every problem in the document (empty when valid).
pub fn validate(doc: &Value) -> Vec<Problem> {
    from_document(doc).err().unwrap_or_default()
}

/// Whether `key` is reserved for a later feature (under a [`RESERVED_PREFIXES`] prefix).
pub fn is_reserved(key: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| key == *p || key.starts_with(&format!("{p}.")))
}

impl Config {
    /// The value of a documented concrete key, as snapd would store it.
    pub fn value_of(&self, name: &str) -> Option<Value> {
        let (spec, segment) = KEYS.iter().find_map(|k| k.matches(name).map(|s| (k, s)))?;
        (spec.get)(self).into_iter().find(|(s, _)| s == segment).map(|(_, v)| v)
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

    /// A string in the format of a bcrypt hash, as `http.users.<user>` takes it.
    const HASH: &str = "$2y$04$5Cz4yWbWYjMLR1jXQ4OeCe5Yq2fGfZc8ZVfYNAq1UQ7n0Ly6JXvJa";

    fn problems(doc: Value) -> Vec<String> {
        validate(&doc).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn empty_document_is_the_defaults() {
        let loaded = from_document(&json!({})).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.sources.is_empty());
        assert!(loaded.effective().iter().all(|(_, _, s)| *s == Source::Default));
        // Keys without a default (a token, TLS files, users) have no value until set.
        let with_default = KEYS.iter().filter(|k| !k.default.is_empty()).count();
        assert_eq!(loaded.effective().len(), with_default - 1, "all but schema-version");
    }

    #[test]
    fn nested_document_sets_every_key() {
        let doc = json!({"interval": 30, "port": 7000, "bind": "127.0.0.1",
            "http": {"port": 0, "bind": "::1", "max-connections": 9, "max-sse": 4,
                "token": "0123456789abcdef", "users": {"alice": HASH}, "metrics-public": true},
            "publish": {"max-subscribers": 5, "format": "legacy", "remodel-events": true},
            "tls": {"cert": "c.pem", "key": "/k.pem", "client-ca": "ca.pem"},
            "limits": {"per-source": 3}, "fleet": {"tenant": "t", "enabled": false},
            "log": {"level": "debug"}, "schema-version": 1,
            "hub": {"spokes": "http://a:9188, http://b:9188/x", "interval": 5, "timeout": 3, "ingest": true},
            "collectors": {"cpu": {"interval": 10}, "temperatures": {"enabled": false}}});
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
        assert_eq!((c.http.max_connections, c.http.max_sse, c.limits.per_source), (9, 4, 3));
        assert_eq!(c.http.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(c.http.users["alice"], HASH);
        assert!(c.http.metrics_public);
        assert_eq!(c.tls.cert.as_deref(), Some(std::path::Path::new("c.pem")));
        assert_eq!(c.tls.key.as_deref(), Some(std::path::Path::new("/k.pem")));
        assert_eq!(c.tls.client_ca.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!(c.hub.spokes, ["http://a:9188", "http://b:9188/x"]);
        assert_eq!((c.hub.interval, c.hub.timeout, c.hub.ingest), (Some(5), Some(3), true));
        assert_eq!(c.collectors["cpu"], CollectorConfig { interval: Some(10), enabled: None });
        assert_eq!(c.collectors["temperatures"].enabled, Some(false));
        assert!(loaded.effective().iter().all(|(_, _, s)| *s == Source::Snapd));
        assert!(loaded.unknown.is_empty());
    }

    #[test]
    fn spokes_are_a_list_of_urls_without_repeats() {
        let get =
            |v: Value| from_document(&json!({"hub": {"spokes": v}})).map(|l| l.config.hub.spokes);
        assert_eq!(get(json!("")).unwrap(), Vec::<String>::new());
        assert_eq!(get(json!(["http://a:1", "https://b"])).unwrap(), ["http://a:1", "https://b"]);
        assert_eq!(get(json!("http://a:1,http://a:1")).unwrap(), ["http://a:1"]);
        assert!(get(json!("a:1")).is_err());
        assert!(get(json!([1])).is_err());
        let many: Vec<String> = (0..=MAX_SPOKES).map(|i| format!("http://h{i}")).collect();
        assert!(get(json!(many.join(","))).is_err());
    }

    #[test]
    fn hub_ca_is_a_path_for_https_spokes() {
        let doc = json!({"hub": {"spokes": "http://a:9188,https://b:9188", "ca": "hub-ca.pem"}});
        let loaded = from_document(&doc).unwrap();
        assert_eq!(loaded.config.hub.ca.as_deref(), Some(std::path::Path::new("hub-ca.pem")));
        assert_eq!(
            problems(json!({"hub": {"spokes": "http://a:9188", "ca": "hub-ca.pem"}})),
            [
                r#"cannot set "hub.ca": must come with an https:// spoke in "hub.spokes", not "hub-ca.pem""#
            ]
        );
        assert_eq!(
            problems(json!({"hub": {"ca": ""}})),
            [r#"cannot set "hub.ca": must be a file path (relative: in $SNAP_COMMON), not """#]
        );
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
                json!({"port": -1}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, or 0 for any free port, not "-1""#,
            ),
            (
                json!({"port": 65536}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, or 0 for any free port, not "65536""#,
            ),
            (
                json!({"port": "http"}),
                r#"cannot set "port": must be a TCP port from 1 to 65535, or 0 for any free port, not "http""#,
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
                json!({"http": {"max-connections": 0}}),
                r#"cannot set "http.max-connections": must be a whole number from 1 to 1000000, not "0""#,
            ),
            (
                json!({"http": {"max-sse": "many"}}),
                r#"cannot set "http.max-sse": must be a whole number from 1 to 1000000, not "many""#,
            ),
            (
                json!({"http": {"token": "short"}}),
                r#"cannot set "http.token": must be 16 to 4096 printable ASCII characters without spaces, not "short""#,
            ),
            (
                json!({"http": {"token": "sixteen chars but spaces"}}),
                r#"cannot set "http.token": must be 16 to 4096 printable ASCII characters without spaces, not "sixteen chars but spaces""#,
            ),
            (
                json!({"http": {"users": {"alice": "plain password"}}}),
                r#"cannot set "http.users.alice": must be a bcrypt hash ($2a$, $2b$ or $2y$, as htpasswd -B writes it), not "plain password""#,
            ),
            (
                json!({"http": {"metrics-public": "yes"}}),
                r#"cannot set "http.metrics-public": must be true or false, not "yes""#,
            ),
            (
                json!({"tls": {"cert": "", "key": "k.pem"}}),
                r#"cannot set "tls.cert": must be a file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"tls": {"cert": "c.pem", "key": 5}}),
                r#"cannot set "tls.key": must be a file path (relative: in $SNAP_COMMON), not "5""#,
            ),
            (
                json!({"tls": {"cert": "c.pem", "key": "k.pem", "client-ca": false}}),
                r#"cannot set "tls.client-ca": must be a file path (relative: in $SNAP_COMMON), not "false""#,
            ),
            (
                json!({"tls": {"cert": "c.pem"}}),
                r#"cannot set "tls.cert": must come with "tls.key", not "c.pem""#,
            ),
            (
                json!({"tls": {"client-ca": "ca.pem"}}),
                r#"cannot set "tls.client-ca": must come with "tls.cert", not "ca.pem""#,
            ),
            (
                json!({"limits": {"per-source": -1}}),
                r#"cannot set "limits.per-source": must be a whole number from 1 to 1000000, not "-1""#,
            ),
            (
                json!({"http": {"bind": "300.1.1.1"}}),
                r#"cannot set "http.bind": must be an IPv4 or IPv6 address, not "300.1.1.1""#,
            ),
            (
                json!({"http": 5}),
                r#"cannot set "http": must hold the keys http.port, http.bind, http.max-connections, http.max-sse, http.token, http.users.<user>, http.metrics-public, not "5""#,
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
                r#"cannot set "publish.format": must be one of json, legacy, not "v2""#,
            ),
            (
                json!({"publish": {"format": ["v1"]}}),
                r#"cannot set "publish.format": must be one of json, legacy, not "[\"v1\"]""#,
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
                json!({"checks": {"filesystem": {"warn": "20:10"}}}),
                r#"cannot set "checks.filesystem.warn": must be a Nagios range such as 85, 10:, ~:10, 10:20 or @10:20, not "20:10""#,
            ),
            (
                json!({"checks": {"load": {"crit": "high"}}}),
                r#"cannot set "checks.load.crit": must be a Nagios range such as 95, 10:, ~:10, 10:20 or @10:20, not "high""#,
            ),
            (
                json!({"checks": {"swap": {"failures-before-critical": 0}}}),
                r#"cannot set "checks.swap.failures-before-critical": must be a whole number from 1 to 100, not "0""#,
            ),
            (
                json!({"checks": {"swap": {"successes-before-ok": 101}}}),
                r#"cannot set "checks.swap.successes-before-ok": must be a whole number from 1 to 100, not "101""#,
            ),
            (
                json!({"checks": {"memory": {"enabled": "no"}}}),
                r#"cannot set "checks.memory.enabled": must be true or false, not "no""#,
            ),
            (
                json!({"http": {"port": 8888}}),
                r#"cannot set "http.port": must differ from "port" (8888), not "8888""#,
            ),
            (
                json!({"port": 9188}),
                r#"cannot set "port": must differ from "http.port" (9188), not "9188""#,
            ),
            (
                json!({"fleet": {"url": "https://user@host"}}),
                r#"cannot set "fleet.url": must be an http:// or https:// URL without credentials, query or fragment, not "https://user@host""#,
            ),
            (
                json!({"fleet": {"ca": ""}}),
                r#"cannot set "fleet.ca": must be a file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"fleet": {"tenant": ""}}),
                r#"cannot set "fleet.tenant": must be 1 to 64 letters, digits, '-' or '_', not """#,
            ),
            (
                json!({"fleet": {"controller-id": "a/b"}}),
                r#"cannot set "fleet.controller-id": must be 1 to 128 letters, digits, '.', '_', ':' or '-', not starting with '.', not "a/b""#,
            ),
            (
                json!({"fleet": {"token": ""}}),
                r#"cannot set "fleet.token": must be 1 to 4096 printable ASCII characters without spaces, not """#,
            ),
            (
                json!({"fleet": {"gateway-token": 5}}),
                r#"cannot set "fleet.gateway-token": must be 1 to 4096 printable ASCII characters without spaces, not "5""#,
            ),
            (
                json!({"fleet": {"trusted-keys": ""}}),
                r#"cannot set "fleet.trusted-keys": must be ed25519 public keys (base64, as `pocketses key export` prints them) separated by spaces or commas, or one file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"fleet": {"enabled": 1}}),
                r#"cannot set "fleet.enabled": must be true or false, not "1""#,
            ),
            (
                json!({"push": {"vm": {"url": "ftp://x/"}}}),
                r#"cannot set "push.vm.url": must be an http:// or https:// URL with a host, not "ftp://x/""#,
            ),
            (
                json!({"push": {"vm": {"url": "http://x/", "format": "graphite"}}}),
                r#"cannot set "push.vm.format": must be one of influx, prometheus, json, not "graphite""#,
            ),
            (
                json!({"push": {"vm": {"url": "http://x/", "format": "json", "token": "a b"}}}),
                r#"cannot set "push.vm.token": must be 1 to 4096 printable ASCII characters without spaces, not "a b""#,
            ),
            (
                json!({"push": {"vm": {"username": "a:b"}}}),
                r#"cannot set "push.vm.username": must be 1 to 256 printable characters without a colon, not "a:b""#,
            ),
            (
                json!({"push": {"vm": {"password": ""}}}),
                r#"cannot set "push.vm.password": must be 1 to 4096 printable characters, not """#,
            ),
            (
                json!({"push": {"vm": {"interval": 0}}}),
                r#"cannot set "push.vm.interval": must be a whole number of seconds from 1 to 86400, not "0""#,
            ),
            (
                json!({"push": {"vm": {"batch": 10001}}}),
                r#"cannot set "push.vm.batch": must be a whole number from 1 to 10000, not "10001""#,
            ),
            (
                json!({"push": {"vm": {"tags": "site"}}}),
                r#"cannot set "push.vm.tags": must be a comma-separated list of key=value, keys of letters, digits and _ not starting with a digit or __, values not empty and without , or =, not "site""#,
            ),
            (
                json!({"push": {"vm": {"ca": ""}}}),
                r#"cannot set "push.vm.ca": must be a file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"push": {"vm": {"spool": {"max-bytes": 1000}}}}),
                r#"cannot set "push.vm.spool.max-bytes": must be a whole number of bytes from 65536 to 1099511627776, not "1000""#,
            ),
            (
                json!({"push": {"vm": {"spool": {"max-age": "5s"}}}}),
                r#"cannot set "push.vm.spool.max-age": must be a duration from 1m to 365d, such as 3600, 90m, 12h or 7d, not "5s""#,
            ),
            (
                json!({"push": {"vm": {"enabled": "yes"}}}),
                r#"cannot set "push.vm.enabled": must be true or false, not "yes""#,
            ),
            (
                json!({"notify": {"webhook": {"url": "hooks.example"}}}),
                r#"cannot set "notify.webhook.url": must be an http:// or https:// URL with a host, not "hooks.example""#,
            ),
            (
                json!({"notify": {"webhook": {"url": "http://h/", "token": ""}}}),
                r#"cannot set "notify.webhook.token": must be 1 to 4096 printable ASCII characters without spaces, not """#,
            ),
            (
                json!({"notify": {"webhook": {"url": "https://h/", "ca": ""}}}),
                r#"cannot set "notify.webhook.ca": must be a file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"hub": {"spokes": "http://a:9188,ftp://b"}}),
                r#"cannot set "hub.spokes": must be a comma-separated list of http:// or https:// URLs with a host (at most 1000), not "http://a:9188,ftp://b""#,
            ),
            (
                json!({"hub": {"interval": 0}}),
                r#"cannot set "hub.interval": must be a whole number of seconds from 1 to 86400, not "0""#,
            ),
            (
                json!({"hub": {"timeout": 301}}),
                r#"cannot set "hub.timeout": must be a whole number of seconds from 1 to 300, not "301""#,
            ),
            (
                json!({"hub": {"token": "short"}}),
                r#"cannot set "hub.token": must be 16 to 4096 printable ASCII characters without spaces, not "short""#,
            ),
            (
                json!({"hub": {"ca": ""}}),
                r#"cannot set "hub.ca": must be a file path (relative: in $SNAP_COMMON), not """#,
            ),
            (
                json!({"hub": {"ingest": "on"}}),
                r#"cannot set "hub.ingest": must be true or false, not "on""#,
            ),
            (
                json!({"collectors": {"gpu": {"interval": 5}}}),
                r#"cannot set "collectors.gpu.interval": must be a whole number of seconds from 1 to 86400, for cpu, memory, network, filesystems, temperatures or load, not "5""#,
            ),
            (
                json!({"collectors": {"cpu": {"enabled": 1}}}),
                r#"cannot set "collectors.cpu.enabled": must be true or false, for cpu, memory, network, filesystems, temperatures or load, not "1""#,
            ),
        ];
        for (doc, want) in table {
            assert_eq!(problems(doc.clone()), vec![want.to_string()], "{doc}");
        }
        // Every documented key has at least one bad value above.
        for spec in KEYS {
            assert!(
                table.iter().any(|(d, _)| flatten(d).keys().any(|k| spec.matches(k).is_some())),
                "no bad value for {}",
                spec.name
            );
        }
    }

    #[test]
    fn all_problems_are_reported() {
        let got = problems(
            json!({"interval": -1, "port": -1, "log": {"level": "x"}, "publish": {"format": "y"}}),
        );
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with(r#"cannot set "interval""#));
        assert!(got[1].starts_with(r#"cannot set "port""#));
        assert!(got[2].starts_with(r#"cannot set "publish.format""#));
        assert!(got[3].starts_with(r#"cannot set "log.level""#));
    }

    /// A valid `fleet.trusted-keys` key (the public half of the ed25519 key with seed [1; 32]).
    fn fleet_key() -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        crate::fleet::bundle::encode_public_key(&key)
    }

    #[test]
    fn fleet_keys_are_read_and_checked() {
        let key = fleet_key();
        let doc = json!({"fleet": {"url": "https://fleet.example:8443/base/", "ca": "ca.pem",
            "tenant": "acme_1", "controller-id": "dev-0042:a", "token": "t0k",
            "trusted-keys": format!("{key}, {key}"), "enabled": true}});
        let loaded = from_document(&doc).unwrap();
        let f = &loaded.config.fleet;
        assert_eq!(f.url.as_deref(), Some("https://fleet.example:8443/base"));
        assert_eq!(f.tenant, "acme_1");
        assert_eq!(f.controller_id.as_deref(), Some("dev-0042:a"));
        assert_eq!(f.token.as_deref(), Some("t0k"));
        assert_eq!(f.trusted_keys, Some(TrustedKeys::Keys(vec![key.clone(), key.clone()])));
        assert!(f.enabled);
        assert_eq!(loaded.config.value_of("fleet.token"), Some(json!("(hidden)")));
        assert_eq!(
            loaded.config.value_of("fleet.trusted-keys"),
            Some(json!(format!("{key} {key}")))
        );
        let file = from_document(&json!({"fleet": {"trusted-keys": "keys/operators"}})).unwrap();
        assert_eq!(
            file.config.fleet.trusted_keys,
            Some(TrustedKeys::File(PathBuf::from("keys/operators")))
        );
        assert_eq!(Config::default().fleet.tenant, "DEFAULT");
        assert!(!Config::default().fleet.enabled);
        for url in ["http://127.0.0.1:8080", "https://[::1]:443/x", "https://h", "http://a-b.c/d/e"]
        {
            assert!(fleet_url(url).is_some(), "{url}");
        }
        for url in [
            "ftp://h",
            "https://",
            "https://u:p@h",
            "https://h?x=1",
            "https://h#f",
            "https://h:0",
            "https://h:99999",
            "https://h b",
            "https://[zz]",
            "h",
            "https://h:x",
        ] {
            assert_eq!(fleet_url(url), None, "{url}");
        }
    }

    #[test]
    fn fleet_problems_in_snapd_grammar() {
        let key = fleet_key();
        let bad_key = format!("{}=", "!".repeat(43));
        assert_eq!(
            problems(json!({"fleet": {"url": "ftp://x", "tenant": "a/b", "controller-id": ".x",
                "token": "a b", "trusted-keys": format!("{key} nope"), "enabled": "yes"}})),
            vec![
                "cannot set \"fleet.url\": must be an http:// or https:// URL without credentials, query or fragment, not \"ftp://x\"",
                "cannot set \"fleet.tenant\": must be 1 to 64 letters, digits, '-' or '_', not \"a/b\"",
                "cannot set \"fleet.controller-id\": must be 1 to 128 letters, digits, '.', '_', ':' or '-', not starting with '.', not \".x\"",
                "cannot set \"fleet.token\": must be 1 to 4096 printable ASCII characters without spaces, not \"a b\"",
                &format!("cannot set \"fleet.trusted-keys\": must be ed25519 public keys (base64, as `pocketses key export` prints them) separated by spaces or commas, or one file path (relative: in $SNAP_COMMON), not \"{key} nope\""),
                "cannot set \"fleet.enabled\": must be true or false, not \"yes\"",
            ]
        );
        let e = problems(json!({"fleet": {"trusted-keys": bad_key}}));
        assert_eq!(e.len(), 1, "a mistyped key is not a file name: {e:?}");
        assert_eq!(
            problems(json!({"fleet": {"enabled": true}})),
            vec![
                "cannot set \"fleet.enabled\": must come with \"fleet.url\", not \"true\"",
                "cannot set \"fleet.enabled\": must come with \"fleet.trusted-keys\" (bundles are applied only when signed by them), not \"true\"",
            ]
        );
        assert_eq!(
            problems(json!({"fleet": {"url": "http://h", "ca": "ca.pem", "token": "a", "gateway-token": "b"}})),
            vec![
                "cannot set \"fleet.ca\": must come with an https:// \"fleet.url\", not \"ca.pem\"",
                "cannot set \"fleet.gateway-token\": must not be set together with \"fleet.token\", not \"(hidden)\"",
            ]
        );
    }

    #[test]
    fn notify_webhook_keys_are_read_and_checked() {
        let loaded = load(
            &json!({"notify": {"webhook": {"url": "https://hooks.example/x", "token": "t0k", "ca": "ca.pem"}}}),
            &set(&[]),
        )
        .unwrap();
        let webhook = &loaded.config.notify.webhook;
        assert_eq!(webhook.url.as_deref(), Some("https://hooks.example/x"));
        assert_eq!(webhook.token.as_deref(), Some("t0k"));
        assert_eq!(webhook.ca.as_deref(), Some(std::path::Path::new("ca.pem")));
        // --set takes the same keys, with the same checks.
        let flags = load(&Value::Null, &set(&["notify.webhook.url=http://127.0.0.1:9/h"])).unwrap();
        assert_eq!(flags.config.notify.webhook.url.as_deref(), Some("http://127.0.0.1:9/h"));
        assert_eq!(
            problems(json!({"notify": {"webhook": {"url": "ftp://x/", "token": "a b", "ca": ""}}})),
            vec![
                "cannot set \"notify.webhook.url\": must be an http:// or https:// URL with a host, not \"ftp://x/\"",
                "cannot set \"notify.webhook.token\": must be 1 to 4096 printable ASCII characters without spaces, not \"a b\"",
                "cannot set \"notify.webhook.ca\": must be a file path (relative: in $SNAP_COMMON), not \"\"",
            ]
        );
        assert_eq!(
            problems(json!({"notify": {"webhook": {"token": "t", "ca": "ca.pem"}}})),
            vec![
                "cannot set \"notify.webhook.token\": must come with \"notify.webhook.url\", not \"(hidden)\"",
                "cannot set \"notify.webhook.ca\": must come with \"notify.webhook.url\", not \"ca.pem\"",
            ]
        );
        assert_eq!(
            problems(json!({"notify": {"webhook": {"url": "http://h/", "ca": "ca.pem"}}})),
            vec!["cannot set \"notify.webhook.ca\": must come with an https:// \"notify.webhook.url\", not \"ca.pem\""]
        );
    }

    #[test]
    fn unknown_keys_are_kept_for_status() {
        let loaded = from_document(&json!({"colour": "red", "fleet": {"colour": "x"}})).unwrap();
        assert_eq!(loaded.unknown, vec!["colour", "fleet.colour"]);
        assert!(!is_reserved("fleet.url") && !is_reserved("push.x.url"));
    }

    fn set(args: &[&str]) -> Settings {
        args.iter().map(|a| parse_setting(a).unwrap()).collect()
    }

    #[test]
    fn flags_win_and_are_checked_like_snapd() {
        let loaded = load(&json!({"interval": 30, "port": 7000}), &set(&["interval=5"])).unwrap();
        assert_eq!(loaded.config.interval, 5);
        assert_eq!(loaded.config.port, 7000);
        assert_eq!(loaded.source("interval"), Source::Flag);
        assert_eq!(loaded.source("port"), Source::Snapd);
        assert_eq!(loaded.source("bind"), Source::Default);
        // The same message as `snap set pocketses interval=0`.
        let bad = load(&Value::Null, &set(&["interval=0"])).unwrap_err();
        assert_eq!(
            bad[0].to_string(),
            r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "0""#
        );
        assert_eq!(
            load(&Value::Null, &set(&["publish.max-subscribers=0"])).unwrap_err()[0].key,
            "publish.max-subscribers"
        );
    }

    #[test]
    fn flag_problems_come_with_snapd_problems_and_cross_checks_see_both() {
        let bad = load(&json!({"interval": -1}), &set(&["port=x"])).unwrap_err();
        let keys: Vec<&str> = bad.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["interval", "port"]);
        // snapd's http.port and a flag's port collide: the flag is the one to blame.
        let clash = load(&json!({"http": {"port": 9000}}), &set(&["port=9000"])).unwrap_err();
        assert_eq!(
            clash[0].to_string(),
            r#"cannot set "port": must differ from "http.port" (9000), not "9000""#
        );
    }

    #[test]
    fn unknown_keys_are_refused_on_the_command_line_only() {
        let bad = load(&Value::Null, &set(&["colour=red"])).unwrap_err();
        assert_eq!(
            bad[0].to_string(),
            r#"cannot set "colour": must be a known key (see `pocketses daemon --help`), not "red""#
        );
        assert_eq!(from_document(&json!({"colour": "red"})).unwrap().unknown, ["colour"]);
        let group = load(&Value::Null, &set(&["http=5"])).unwrap_err();
        assert_eq!(group[0].key, "http");
    }

    #[test]
    fn settings_parse_like_snap_set() {
        assert_eq!(parse_setting("interval=30").unwrap(), ("interval".into(), json!(30)));
        assert_eq!(parse_setting("bind=127.0.0.1").unwrap(), ("bind".into(), json!("127.0.0.1")));
        assert_eq!(parse_setting("a.b={\"c\":1}").unwrap(), ("a.b".into(), json!({"c": 1})));
        assert_eq!(parse_setting("x=").unwrap(), ("x".into(), json!("")));
        assert_eq!(parse_setting("x=a=b").unwrap(), ("x".into(), json!("a=b")));
        assert!(parse_setting("interval").unwrap_err().contains("want key=value"));
        assert!(parse_setting("=1").is_err());
        assert!(parse_setting("a..b=1").is_err());
        assert_eq!(
            document_of(&set(&["http.port=1", "http.bind=::1", "interval=2", "interval=3"])),
            json!({"http": {"port": 1, "bind": "::1"}, "interval": 3})
        );
    }

    #[test]
    fn every_key_reads_back_what_it_stored() {
        // The table is the one list: each entry's setter and getter agree.
        let c = Config::default();
        for k in KEYS.iter().filter(|k| !k.name.contains('<') && !k.default.is_empty()) {
            let value = c.value_of(k.name).unwrap_or_else(|| panic!("{} has no value", k.name));
            let loaded = load(&Value::Null, &[(k.name.to_string(), value.clone())]).unwrap();
            assert_eq!(loaded.config.value_of(k.name), Some(value), "{}", k.name);
            assert_eq!(loaded.source(k.name), Source::Flag);
        }
    }

    #[test]
    fn keys_without_default_read_back_what_they_stored() {
        let set = [
            ("tls.cert", json!("c.pem")),
            ("tls.key", json!("/etc/k.pem")),
            ("tls.client-ca", json!("ca.pem")),
        ];
        let settings: Vec<(String, Value)> =
            set.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let loaded = load(&Value::Null, &settings).unwrap();
        for (key, value) in set {
            assert_eq!(loaded.config.value_of(key), Some(value), "{key}");
            assert_eq!(loaded.source(key), Source::Flag);
        }
        // A user's hash is stored, and reads back hidden.
        let users = [("http.users.alice".to_string(), json!(HASH))];
        let loaded = load(&Value::Null, &users).unwrap();
        assert_eq!(loaded.config.http.users.get("alice").map(String::as_str), Some(HASH));
        assert_eq!(loaded.config.value_of("http.users.alice"), Some(json!(HIDDEN)));
        assert_eq!(loaded.source("http.users.alice"), Source::Flag);
        // The token is stored, and reads back hidden.
        let token = [("http.token".to_string(), json!("0123456789abcdef"))];
        let loaded = load(&Value::Null, &token).unwrap();
        assert_eq!(loaded.config.http.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(loaded.config.value_of("http.token"), Some(json!(HIDDEN)));
        // Unset, they have no value, and nothing writes a default for them.
        let defaults = Config::default();
        assert_eq!(defaults.value_of("http.token"), None);
        assert_eq!(defaults.value_of("tls.cert"), None);
    }

    #[test]
    fn placeholder_keys_match_one_segment() {
        let spec = Key { name: "http.users.<user>", ..KEYS[0] };
        assert_eq!(spec.matches("http.users.alice"), Some("alice"));
        assert_eq!(spec.matches("http.users"), None);
        assert_eq!(spec.matches("http.users.a.b"), None);
        assert_eq!(spec.concrete("bob"), "http.users.bob");
        assert_eq!(KEYS[0].matches("interval"), Some(""));
        assert_eq!(KEYS[0].concrete(""), "interval");
    }

    #[test]
    fn check_keys_fill_the_checks_map() {
        let doc = json!({"checks": {"filesystem": {"warn": 80, "crit": "@90:", "enabled": false},
            "load": {"failures-before-critical": "5", "successes-before-ok": 2}}});
        let loaded = from_document(&doc).unwrap();
        let fs = &loaded.config.checks["filesystem"];
        assert_eq!(fs.warn, Some("80".parse().unwrap()));
        assert_eq!(fs.crit, Some("@90:".parse().unwrap()));
        assert_eq!((fs.enabled, fs.failures_before_critical), (Some(false), None));
        let load_check = &loaded.config.checks["load"];
        assert_eq!(
            (load_check.failures_before_critical, load_check.successes_before_ok),
            (Some(5), Some(2))
        );
        assert_eq!(loaded.config.value_of("checks.filesystem.crit"), Some(json!("@90:")));
        assert_eq!(loaded.config.value_of("checks.load.warn"), None);
        assert_eq!(loaded.source("checks.filesystem.warn"), Source::Snapd);
        let names: Vec<String> = loaded.effective().into_iter().map(|(k, _, _)| k).collect();
        assert!(names.contains(&"checks.load.successes-before-ok".to_string()), "{names:?}");
        // The same key on the command line, checked the same way.
        let flags = load(&Value::Null, &set(&["checks.swap.warn=0:0"])).unwrap();
        assert_eq!(flags.config.checks["swap"].warn, Some("0:0".parse().unwrap()));
        let group = load(&Value::Null, &set(&["checks.swap=1"])).unwrap_err();
        assert!(
            group[0].allowed.starts_with("must hold the keys checks.<check>.warn"),
            "{group:?}"
        );
    }

    fn sink(doc: Value) -> Result<SinkConfig, Vec<String>> {
        from_document(&json!({"push": {"vm": doc}}))
            .map(|l| l.config.push["vm"].clone())
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn push_keys_fill_a_sink() {
        let got = sink(json!({"url": "https://vm.example:8428/api/v1/write", "format": "prometheus",
            "token": "t0k", "interval": "30", "batch": 10, "tags": " site=lab , rack=4", "ca": "ca.pem",
            "spool": {"max-bytes": 1_048_576, "max-age": "7d"}, "enabled": false}))
        .unwrap();
        assert_eq!(got.url.as_deref(), Some("https://vm.example:8428/api/v1/write"));
        assert_eq!(got.format, Some(SinkFormat::Prometheus));
        assert_eq!(got.token.as_deref(), Some("t0k"));
        assert_eq!((got.interval, got.batch(), got.enabled()), (Some(30), 10, false));
        assert_eq!(got.tags, [("site".into(), "lab".into()), ("rack".into(), "4".into())]);
        assert_eq!(got.ca.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!((got.spool_max_bytes(), got.spool_max_age), (1 << 20, Some(7 * 86_400)));
        let defaults = sink(json!({"url": "http://h/write?db=x", "format": "influx"})).unwrap();
        assert_eq!((defaults.batch(), defaults.enabled()), (60, true));
        assert_eq!(defaults.spool_max_bytes(), 64 << 20);
    }

    #[test]
    fn push_secrets_read_back_hidden_and_the_rest_as_stored() {
        let doc = json!({"push": {"a": {"url": "http://h/write?db=x", "format": "influx",
            "username": "u", "password": "secret", "tags": ["k=v", "x=y"], "spool": {"max-age": "90m"}},
            "b": {"url": "http://h/api/v2/write", "format": "influx", "token": "secret"}}});
        let loaded = from_document(&doc).unwrap();
        let c = &loaded.config;
        assert_eq!(c.value_of("push.a.password"), Some(json!(HIDDEN)));
        assert_eq!(c.value_of("push.b.token"), Some(json!(HIDDEN)));
        assert_eq!(c.value_of("push.a.username"), Some(json!("u")));
        assert_eq!(c.value_of("push.a.tags"), Some(json!("k=v,x=y")));
        assert_eq!(c.value_of("push.a.spool.max-age"), Some(json!(5400)));
        assert_eq!(c.value_of("push.b.format"), Some(json!("influx")));
        assert_eq!(loaded.source("push.a.url"), Source::Snapd);
        let shown = loaded.effective();
        assert!(shown.iter().all(|(_, v, _)| v != &json!("secret")), "{shown:?}");
        // What reads back loads again to the same sink (the hidden password given again).
        let again: Settings = shown
            .iter()
            .filter(|(k, _, _)| k.starts_with("push.a.") && !k.ends_with("password"))
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .chain([("push.a.password".to_string(), json!("secret"))])
            .collect();
        assert_eq!(load(&Value::Null, &again).unwrap().config.push["a"], c.push["a"]);
    }

    #[test]
    fn push_cross_checks_speak_snapds_grammar() {
        for (doc, want) in [
            (
                json!({"url": "http://h/"}),
                r#"cannot set "push.vm.url": must come with "push.vm.format", not "http://h/""#,
            ),
            (
                json!({"format": "json"}),
                r#"cannot set "push.vm.format": must come with "push.vm.url", not "json""#,
            ),
            (
                json!({"token": "secret"}),
                r#"cannot set "push.vm.token": must come with "push.vm.url", not "(hidden)""#,
            ),
            (
                json!({"url": "http://h/", "format": "influx", "username": "u"}),
                r#"cannot set "push.vm.username": must come with "push.vm.password", not "u""#,
            ),
            (
                json!({"url": "http://h/", "format": "influx", "password": "p"}),
                r#"cannot set "push.vm.password": must come with "push.vm.username", not "(hidden)""#,
            ),
            (
                json!({"url": "http://h/", "format": "influx", "username": "u", "password": "p", "token": "t"}),
                r#"cannot set "push.vm.token": must not be set with "push.vm.username" (one kind of credentials per sink), not "(hidden)""#,
            ),
            (
                json!({"url": "http://h/", "format": "influx", "tags": "_x=1"}),
                r#"cannot set "push.vm.tags": must be tags an influx sink can carry ("_x": keys starting with _ are reserved), not "_x=1""#,
            ),
            (
                json!({"url": "http://h/", "format": "influx", "ca": "ca.pem"}),
                r#"cannot set "push.vm.ca": must come with an https:// "push.vm.url", not "ca.pem""#,
            ),
        ] {
            assert_eq!(sink(doc.clone()).unwrap_err(), vec![want.to_string()], "{doc}");
        }
        // A sink name becomes a directory name: the command line cannot smuggle a path in.
        let bad = load(&Value::Null, &set(&["push.A_b.url=http://h/", "push.A_b.format=json"]))
            .unwrap_err();
        assert_eq!(bad[0].key, "push.A_b.url");
        assert!(bad[0].allowed.contains("lowercase letters, digits and dashes"), "{bad:?}");
        // A scalar where a sink belongs names the sink's keys.
        let group = load(&Value::Null, &set(&["push.vm=1"])).unwrap_err();
        assert!(group[0].allowed.starts_with("must hold the keys push.<name>.url"), "{group:?}");
    }

    #[test]
    fn tags_and_durations_parse_exactly() {
        assert_eq!(tags(&json!("")), Some(vec![]));
        assert_eq!(
            tags(&json!("a=1,b=x y")),
            Some(vec![("a".into(), "1".into()), ("b".into(), "x y".into())])
        );
        for bad in ["a", "=1", "a=", "1a=x", "__a=x", "a=1,a=2", "a-b=1", "a=b=c"] {
            assert_eq!(tags(&json!(bad)), None, "{bad}");
        }
        assert_eq!(tags(&json!(5)), None);
        assert_eq!(duration(&json!(3600)), Some(3600));
        assert_eq!(duration(&json!("3600")), Some(3600));
        assert_eq!(duration(&json!("90m")), Some(5400));
        assert_eq!(duration(&json!("12h")), Some(43_200));
        assert_eq!(duration(&json!("365d")), Some(365 * 86_400));
        for bad in [json!("59s"), json!("366d"), json!("1w"), json!("h"), json!(-5), json!(true)] {
            assert_eq!(duration(&bad), None, "{bad}");
        }
        assert!(valid_sink_name("vm-1") && !valid_sink_name("-x") && !valid_sink_name("a/b"));
        assert!(!valid_sink_name("") && !valid_sink_name(".."));
    }

    #[test]
    fn stream_format_takes_json_its_old_name_and_legacy_only() {
        let get = |v: &str| {
            from_document(&json!({"publish": {"format": v}})).map(|l| l.config.publish.format)
        };
        assert_eq!(get("json"), Ok(Format::Json));
        assert_eq!(get("v1"), Ok(Format::Json));
        assert_eq!(get("legacy"), Ok(Format::Legacy));
        assert!(get("prometheus").is_err());
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
                "http.max-connections",
                "http.max-sse",
                "http.metrics-public",
                "publish.max-subscribers",
                "publish.format",
                "publish.remodel-events",
                "limits.per-source",
                "fleet.tenant",
                "fleet.enabled",
                "log.level",
                "hub.timeout",
                "hub.ingest"
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
                "tls",
                "limits",
                "fleet",
                "log",
                "schema-version",
                "checks",
                "push",
                "notify",
                "hub",
                "collectors"
            ]
        );
    }

    #[test]
    fn value_of_round_trips_through_the_document() {
        let c = Config::default();
        let mut doc = serde_json::Map::new();
        for k in KEYS.iter().filter(|k| !k.default.is_empty()) {
            doc.insert(k.name.to_string(), c.value_of(k.name).unwrap());
        }
        // Dotted keys in one flat object are not nested, so build the nested form by hand.
        let nested = json!({"interval": doc["interval"], "port": doc["port"], "bind": doc["bind"],
            "http": {"port": doc["http.port"], "bind": doc["http.bind"],
                "max-connections": doc["http.max-connections"], "max-sse": doc["http.max-sse"],
                "metrics-public": doc["http.metrics-public"]},
            "limits": {"per-source": doc["limits.per-source"]},
            "publish": {"max-subscribers": doc["publish.max-subscribers"], "format": doc["publish.format"]},
            "log": {"level": doc["log.level"]}});
        assert_eq!(from_document(&nested).unwrap().config, c);
    }

    proptest::proptest! {
        #[test]
        fn valid_values_load_exactly(interval in 1u32..=86_400, port in 1u16..=65_535, http in 0u16..=65_535,
                                     max in 1usize..=1_000_000, legacy in proptest::bool::ANY) {
            proptest::prop_assume!(http == 0 || http != port);
            let format = if legacy { "legacy" } else { "json" };
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
