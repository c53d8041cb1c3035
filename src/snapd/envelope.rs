//! snapd's JSON response envelope: `sync`, `async` (a change id) or `error` (`snapd:daemon/response.go`).
//!
//! [pure] Bytes and a status code in, a typed [`Envelope`] or [`Error`] out.
//! This module does not know how the bytes travelled.

use serde::Deserialize;
use serde_json::Value;

use super::Error;

/// The three response types snapd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    /// The result is in `result` (HTTP 200).
    Sync,
    /// A change was started; its id is in `change` (HTTP 202).
    Async,
    /// `result` holds `{message, kind, value}`.
    Error,
}

/// Pending restart announced by snapd (`maintenance` in the envelope or `/var/lib/snapd/maintenance.json`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Maintenance {
    /// `daemon-restart` or `system-restart`.
    pub kind: String,
    /// Human text, e.g. "system is restarting".
    pub message: String,
    /// For system restarts, `{"op": "reboot"}` and the like.
    #[serde(default)]
    pub value: Option<Value>,
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: Type,
    /// `status-code`, the HTTP status repeated in the body.
    #[serde(rename = "status-code")]
    pub status_code: u16,
    /// `status`, the HTTP status text.
    #[serde(default)]
    pub status: String,
    /// `result`, null allowed.
    #[serde(default)]
    pub result: Value,
    /// `change`, the id of the change an async request started.
    #[serde(default)]
    pub change: Option<String>,
    /// `sources` (`["local"]` on snap lists).
    #[serde(default)]
    pub sources: Vec<String>,
    /// `warning-count`, omitted when zero.
    #[serde(rename = "warning-count", default)]
    pub warning_count: u64,
    /// `warning-timestamp`.
    #[serde(rename = "warning-timestamp", default)]
    pub warning_timestamp: Option<String>,
    /// `maintenance`, present while a restart is pending.
    #[serde(default)]
    pub maintenance: Option<Maintenance>,
}

/// The `result` of an error envelope.
#[derive(Debug, Deserialize)]
struct ErrorResult {
    #[serde(default)]
    message: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

/// Decodes a reply body; an error envelope becomes [`Error::Api`].
///
/// # Errors
/// [`Error::Api`] for `"type": "error"`, [`Error::Decode`] when the body is not an envelope.
pub fn decode(http_status: u16, body: &[u8]) -> Result<Envelope, Error> {
    let env: Envelope = serde_json::from_slice(body).map_err(|err| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(120).collect();
        Error::Decode(format!("HTTP {http_status}: {err}: {text:?}"))
    })?;
    if env.kind == Type::Error {
        let res: ErrorResult = serde_json::from_value(env.result.clone())
            .map_err(|err| Error::Decode(format!("error result: {err}")))?;
        let message = if res.message.is_empty() { env.status.clone() } else { res.message };
        return Err(Error::Api {
            kind: res.kind.filter(|k| !k.is_empty()),
            message,
            status: env.status_code,
            value: res.value,
        });
    }
    Ok(env)
}

impl Envelope {
    /// The `result` of a sync reply, typed.
    ///
    /// # Errors
    /// [`Error::Decode`] when the reply is async or `result` does not have the expected shape.
    pub fn into_sync<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        if self.kind != Type::Sync {
            return Err(Error::Decode(format!("expected a sync response, got {:?}", self.kind)));
        }
        serde_json::from_value(self.result).map_err(|err| Error::Decode(err.to_string()))
    }

    /// The change id of an async reply.
    ///
    /// # Errors
    /// [`Error::Decode`] when the reply is not async or carries no change id.
    pub fn into_change_id(self) -> Result<String, Error> {
        match (self.kind, self.change) {
            (Type::Async, Some(id)) if !id.is_empty() => Ok(id),
            (kind, _) => Err(Error::Decode(format!(
                "expected an async response with a change id, got {kind:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_with_warnings_and_maintenance() {
        let body = br#"{"type":"sync","status-code":200,"status":"OK","result":{"series":"16"},
            "sources":["local"],"warning-count":2,"warning-timestamp":"2024-08-09T12:00:00Z",
            "maintenance":{"kind":"system-restart","message":"system is restarting","value":{"op":"reboot"}}}"#;
        let env = decode(200, body).unwrap();
        assert_eq!(env.kind, Type::Sync);
        assert_eq!(env.status_code, 200);
        assert_eq!(env.status, "OK");
        assert_eq!(env.warning_count, 2);
        assert_eq!(env.sources, vec!["local"]);
        let m = env.maintenance.clone().unwrap();
        assert_eq!(m.kind, "system-restart");
        assert_eq!(m.value.unwrap()["op"], "reboot");
        let v: Value = env.into_sync().unwrap();
        assert_eq!(v["series"], "16");
    }

    #[test]
    fn async_gives_the_change_id() {
        let body = br#"{"type":"async","status-code":202,"status":"Accepted","result":null,"change":"42"}"#;
        let env = decode(202, body).unwrap();
        assert_eq!(env.kind, Type::Async);
        assert_eq!(env.clone().into_change_id().unwrap(), "42");
        assert!(matches!(env.into_sync::<Value>(), Err(Error::Decode(_))));
    }

    #[test]
    fn error_keeps_kind_message_status_and_value() {
        let body = br#"{"type":"error","status-code":400,"status":"Bad Request","result":{"message":"snap \"pocketses\" has no \"x\" configuration option","kind":"option-not-found","value":{"SnapName":"pocketses","Key":"x"}}}"#;
        let err = decode(400, body).unwrap_err();
        match &err {
            Error::Api { kind, message, status, value } => {
                assert_eq!(kind.as_deref(), Some("option-not-found"));
                assert_eq!(message, "snap \"pocketses\" has no \"x\" configuration option");
                assert_eq!(*status, 400);
                assert_eq!(value.as_ref().unwrap()["Key"], "x");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_not_found());
    }

    #[test]
    fn error_without_kind() {
        let body = br#"{"type":"error","status-code":405,"status":"Method Not Allowed","result":{"message":"method \"PUT\" not allowed"}}"#;
        let err = decode(405, body).unwrap_err();
        assert_eq!(err.kind(), None);
        assert_eq!(err.status(), Some(405));
        assert_eq!(err.to_string(), "method \"PUT\" not allowed");
    }

    #[test]
    fn snapctl_unsuccessful_is_an_error_with_status_200() {
        let body = br#"{"type":"error","status-code":200,"status":"OK","result":{"message":"unsuccessful with exit code: 1","kind":"unsuccessful","value":{"stdout":"","stderr":"","exit-code":1}}}"#;
        let err = decode(200, body).unwrap_err();
        assert!(err.is_kind("unsuccessful"));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for body in [&b"not json"[..], br#"{"type":"weird","status-code":200}"#, br#"{"result":1}"#]
        {
            assert!(matches!(decode(200, body), Err(Error::Decode(_))), "{body:?}");
        }
    }

    #[test]
    fn async_without_change_is_refused() {
        let env =
            decode(202, br#"{"type":"async","status-code":202,"status":"Accepted","result":null}"#)
                .unwrap();
        assert!(env.into_change_id().is_err());
    }
}
