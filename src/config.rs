//! The typed configuration of the agent, its defaults, and where each value came from.
//!
//! [pure] Values in, values out: reading snapd or flags happens at the edges
//! (`daemon`, `hooks`, `status`), which hand the raw values to this module.

use std::net::IpAddr;

/// Output shape of the published JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The documented schema (`docs/metrics.md`).
    #[default]
    V1,
    /// The exact shape of the original Python pocketses.
    Legacy,
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
}

/// Default TCP port, the original pocketses' port.
pub const DEFAULT_PORT: u16 = 8888;
/// Default HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 9188;
/// Default interval in seconds.
pub const DEFAULT_INTERVAL: u32 = 60;

impl Default for Config {
    fn default() -> Self {
        let any = IpAddr::from([0, 0, 0, 0]);
        Config {
            interval: DEFAULT_INTERVAL,
            port: DEFAULT_PORT,
            bind: any,
            http: HttpConfig { port: DEFAULT_HTTP_PORT, bind: any },
            publish: PublishConfig { max_subscribers: 10_000, format: Format::V1 },
            log_level: "info".to_string(),
        }
    }
}
