//! snapctl spoken directly: `POST /v2/snapctl` on snapd-snap.socket with the hook or app context.
//!
//! Building the argument lists and mapping replies to exit codes is pure; [`Snapctl::run`] is the I/O.
//! Replies map like the real `snapctl` does (`snapd:cmd/snapctl/main.go`): success prints stdout and
//! stderr and exits 0; kind `unsuccessful` carries the command's own stdout, stderr and exit code;
//! any other error prints `error: <message>` and exits 1.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::{kind, Client, Error, Method, Request};

/// Environment variable holding the context id (set by snap-confine for apps and by snapd for hooks).
pub const COOKIE_ENV: &str = "SNAP_COOKIE";
/// The older name of the same variable.
pub const CONTEXT_ENV: &str = "SNAP_CONTEXT";

/// The context id from `SNAP_COOKIE` or else `SNAP_CONTEXT`, when running inside a snap.
pub fn context_from_env() -> Option<String> {
    [COOKIE_ENV, CONTEXT_ENV]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|value| !value.is_empty())
}

/// What a snapctl command printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code the real snapctl would exit with.
    pub exit_code: i32,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

#[derive(Deserialize)]
struct Streams {
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(rename = "exit-code", default)]
    exit_code: Option<i64>,
}

/// Maps a decoded reply the way the real snapctl does; `Err` stays for transport failures.
///
/// # Errors
/// Transport and decode errors, which the real snapctl would also print as `error: …`.
pub fn map_reply(reply: Result<Value, Error>) -> Result<Output, Error> {
    match reply {
        Ok(result) => {
            let streams: Streams =
                serde_json::from_value(result).map_err(|err| Error::Decode(err.to_string()))?;
            Ok(Output { stdout: streams.stdout, stderr: streams.stderr, exit_code: 0 })
        }
        Err(Error::Api { kind: Some(k), value: Some(value), message, status })
            if k == kind::UNSUCCESSFUL =>
        {
            match serde_json::from_value::<Streams>(value.clone()) {
                Ok(Streams { stdout, stderr, exit_code: Some(code) }) => {
                    Ok(Output { stdout, stderr, exit_code: i32::try_from(code).unwrap_or(1) })
                }
                _ => Ok(Output {
                    stdout: String::new(),
                    stderr: format!(
                        "error: {}\n",
                        Error::Api { kind: Some(k), message, status, value: Some(value) }
                    ),
                    exit_code: 1,
                }),
            }
        }
        Err(err @ Error::Api { .. }) => {
            Ok(Output { stdout: String::new(), stderr: format!("error: {err}\n"), exit_code: 1 })
        }
        Err(err) => Err(err),
    }
}

/// Arguments of `snapctl get -d KEYS…`.
pub fn get_args(keys: &[&str]) -> Vec<String> {
    let mut args = vec!["get".to_string(), "-d".to_string()];
    args.extend(keys.iter().map(|k| (*k).to_string()));
    args
}

/// Arguments of `snapctl set -t key=<json>…` (strict JSON, so "30" stays a string and 30 a number).
pub fn set_args(values: &[(String, Value)]) -> Vec<String> {
    let mut args = vec!["set".to_string(), "-t".to_string()];
    args.extend(values.iter().map(|(k, v)| format!("{k}={v}")));
    args
}

/// A snapctl client bound to one context.
#[derive(Debug, Clone)]
pub struct Snapctl {
    client: Client,
    context: String,
}

impl Snapctl {
    /// A client of `client`'s socket (normally snapd-snap.socket) with this context id.
    pub fn new(client: Client, context: impl Into<String>) -> Self {
        Snapctl { client, context: context.into() }
    }

    /// From the environment: socket from [`super::snapctl_socket_path`], context from [`context_from_env`].
    /// `None` outside a snap.
    pub fn from_env() -> Option<Self> {
        let context = context_from_env()?;
        let transport = super::socket::UnixTransport::new(super::snapctl_socket_path());
        Some(Snapctl::new(Client::new(std::sync::Arc::new(transport)), context))
    }

    /// Runs one snapctl command.
    ///
    /// # Errors
    /// Only when snapd cannot be reached or answers garbage; command failures are in [`Output`].
    pub async fn run(&self, args: &[String]) -> Result<Output, Error> {
        let body = serde_json::json!({"context-id": self.context, "args": args});
        let reply = self.client.call(Request::json(Method::Post, "/v2/snapctl", &body)).await;
        map_reply(reply.and_then(|env| env.into_sync::<Value>()))
    }

    /// Runs a command with stdin (only `fde-setup-result` reads it).
    ///
    /// # Errors
    /// As [`Snapctl::run`].
    pub async fn run_with_stdin(&self, args: &[String], stdin: &[u8]) -> Result<Output, Error> {
        let stdin = base64::engine::general_purpose::STANDARD.encode(stdin);
        let body = serde_json::json!({"context-id": self.context, "args": args, "stdin": stdin});
        let reply = self.client.call(Request::json(Method::Post, "/v2/snapctl", &body)).await;
        map_reply(reply.and_then(|env| env.into_sync::<Value>()))
    }

    async fn checked(&self, args: Vec<String>) -> Result<Output, Error> {
        let out = self.run(&args).await?;
        if out.success() {
            Ok(out)
        } else {
            let message = out.stderr.trim().trim_start_matches("error: ").to_string();
            Err(Error::Api {
                kind: Some(kind::UNSUCCESSFUL.to_string()),
                message: if message.is_empty() {
                    format!("snapctl {} failed", args[0])
                } else {
                    message
                },
                status: 200,
                value: Some(serde_json::json!({"exit-code": out.exit_code})),
            })
        }
    }

    /// `snapctl get -d KEYS…`: an object holding only the keys that are set (nested objects for prefixes).
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn get(&self, keys: &[&str]) -> Result<serde_json::Map<String, Value>, Error> {
        let out = self.checked(get_args(keys)).await?;
        let text = out.stdout.trim();
        if text.is_empty() {
            return Ok(serde_json::Map::new());
        }
        serde_json::from_str(text).map_err(|err| Error::Decode(format!("snapctl get: {err}")))
    }

    /// `snapctl set -t key=value…`.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn set(&self, values: &[(String, Value)]) -> Result<(), Error> {
        if values.is_empty() {
            return Ok(());
        }
        self.checked(set_args(values)).await.map(drop)
    }

    /// `snapctl unset KEYS…`.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn unset(&self, keys: &[&str]) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut args = vec!["unset".to_string()];
        args.extend(keys.iter().map(|k| (*k).to_string()));
        self.checked(args).await.map(drop)
    }

    /// `snapctl is-connected PLUG`: exit 0 connected, 1 not.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or an exit code other than 0 and 1.
    pub async fn is_connected(&self, plug: &str) -> Result<bool, Error> {
        let out = self.run(&["is-connected".to_string(), plug.to_string()]).await?;
        match out.exit_code {
            0 => Ok(true),
            1 if out.stderr.is_empty() => Ok(false),
            _ => Err(Error::Api {
                kind: Some(kind::UNSUCCESSFUL.to_string()),
                message: out.stderr.trim().trim_start_matches("error: ").to_string(),
                status: 200,
                value: Some(serde_json::json!({"exit-code": out.exit_code})),
            }),
        }
    }

    /// `snapctl services`: the table of this snap's services.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn services(&self) -> Result<String, Error> {
        Ok(self.checked(vec!["services".to_string()]).await?.stdout)
    }

    /// `snapctl set-health STATUS [MESSAGE] [--code=CODE]`; status is okay, waiting, blocked or error.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or snapd's refusal (e.g. a message shorter than 7 characters).
    pub async fn set_health(
        &self,
        status: &str,
        message: Option<&str>,
        code: Option<&str>,
    ) -> Result<(), Error> {
        let mut args = vec!["set-health".to_string()];
        if let Some(code) = code {
            args.push(format!("--code={code}"));
        }
        args.push(status.to_string());
        if let Some(message) = message {
            args.push(message.to_string());
        }
        self.checked(args).await.map(drop)
    }

    /// `snapctl model --assertion`: the model assertion text.
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn model(&self) -> Result<String, Error> {
        Ok(self.checked(vec!["model".to_string(), "--assertion".to_string()]).await?.stdout)
    }

    /// `snapctl system-mode`: the `system-mode:` value (`run`, `install`, …).
    ///
    /// # Errors
    /// As [`Snapctl::run`], or the command's failure.
    pub async fn system_mode(&self) -> Result<String, Error> {
        let out = self.checked(vec!["system-mode".to_string()]).await?;
        Ok(parse_system_mode(&out.stdout).unwrap_or_default())
    }
}

/// The value of `system-mode:` in snapctl's YAML-ish output.
pub fn parse_system_mode(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| line.strip_prefix("system-mode:").map(|v| v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_passes_streams_through() {
        let out = map_reply(Ok(serde_json::json!({"stdout": "30\n", "stderr": ""}))).unwrap();
        assert_eq!(out, Output { stdout: "30\n".into(), stderr: String::new(), exit_code: 0 });
    }

    #[test]
    fn unsuccessful_uses_the_commands_exit_code() {
        let err = Error::Api {
            kind: Some("unsuccessful".into()),
            message: "unsuccessful with exit code: 1".into(),
            status: 200,
            value: Some(serde_json::json!({"stdout": "", "stderr": "x", "exit-code": 1})),
        };
        let out = map_reply(Err(err)).unwrap();
        assert_eq!(out.exit_code, 1);
        assert_eq!(out.stderr, "x");
    }

    #[test]
    fn other_errors_become_error_line_and_exit_1() {
        let err = Error::Api {
            kind: None,
            message: "error running snapctl: get which option?".into(),
            status: 400,
            value: None,
        };
        let out = map_reply(Err(err)).unwrap();
        assert_eq!(out.exit_code, 1);
        assert_eq!(out.stderr, "error: error running snapctl: get which option?\n");
    }

    #[test]
    fn transport_errors_stay_errors() {
        assert!(
            map_reply(Err(Error::Timeout { after: std::time::Duration::from_secs(1) })).is_err()
        );
    }

    #[test]
    fn args() {
        assert_eq!(get_args(&["interval", "http"]), vec!["get", "-d", "interval", "http"]);
        let values = vec![
            ("interval".to_string(), Value::from(60)),
            ("publish.format".to_string(), Value::from("v1")),
        ];
        assert_eq!(set_args(&values), vec!["set", "-t", "interval=60", "publish.format=\"v1\""]);
        assert_eq!(
            parse_system_mode("system-mode: run\nseed-loaded: true\n").as_deref(),
            Some("run")
        );
    }
}
