//! Where the snap's configuration is read from: snapd's REST API or snapctl.
//!
//! \[io\] With `snapd-control` connected the daemon may use `GET /v2/snaps/pocketses/conf` on
//! /run/snapd.socket, which returns the whole document (unknown keys included).
//! Without it, only /run/snapd-snap.socket is allowed, so it asks snapctl for the top-level
//! keys it knows (`snapctl get` has no whole-document form).
//! Hooks always use snapctl: inside `configure` only snapctl sees the pending `snap set` values.

use serde_json::Value;

use super::snapctl::Snapctl;
use super::{Client, Error, SNAP_NAME};
use crate::config;

/// How the configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `GET /v2/snaps/pocketses/conf` (needs snapd-control inside a snap).
    Rest,
    /// `snapctl get -d` over snapd-snap.socket.
    Snapctl,
}

impl Via {
    /// `rest` or `snapctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Rest => "rest",
            Via::Snapctl => "snapctl",
        }
    }
}

/// Reads the configuration document through REST or snapctl.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    rest: Client,
    snapctl: Option<Snapctl>,
}

impl ConfigSource {
    /// A source over these clients; `snapctl` is `None` outside a snap.
    pub fn new(rest: Client, snapctl: Option<Snapctl>) -> Self {
        ConfigSource { rest, snapctl }
    }

    /// From the environment (socket overrides, `SNAP_COOKIE`).
    pub fn from_env() -> Self {
        ConfigSource::new(Client::from_env(), Snapctl::from_env())
    }

    /// Whether running inside a snap (a snapctl context exists).
    pub fn in_snap(&self) -> bool {
        self.snapctl.is_some()
    }

    /// The REST client.
    pub fn rest(&self) -> &Client {
        &self.rest
    }

    /// The snapctl client, inside a snap.
    pub fn snapctl(&self) -> Option<&Snapctl> {
        self.snapctl.as_ref()
    }

    /// Picks REST when `snapd-control` is connected (asked through snapctl), else snapctl.
    /// Outside a snap only REST exists.
    ///
    /// # Errors
    /// When snapctl cannot be reached.
    pub async fn detect(&self) -> Result<Via, Error> {
        match &self.snapctl {
            None => Ok(Via::Rest),
            Some(ctl) => {
                Ok(if ctl.is_connected("snapd-control").await? { Via::Rest } else { Via::Snapctl })
            }
        }
    }

    /// Reads the document through `via`.
    ///
    /// # Errors
    /// The client's errors; with snapctl outside a snap, an internal error.
    pub async fn document(&self, via: Via) -> Result<Value, Error> {
        match via {
            Via::Rest => self.rest.get_conf(SNAP_NAME, &[]).await,
            Via::Snapctl => match &self.snapctl {
                Some(ctl) => Ok(Value::Object(ctl.get(&config::top_level_keys()).await?)),
                None => Err(Error::Decode("internal error: snapctl needs SNAP_COOKIE".to_string())),
            },
        }
    }
}
