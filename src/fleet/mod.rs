//! Fleet updates: signed update bundles, and the hawkBit DDI client that takes them from a
//! fleet server such as gooseBit and applies them through snapd.
//!
//! - `cpio`: the newc archive format, streaming reader with the bundle's refusals, and writer \[pure\]
//! - `libconfig`: the subset of libconfig `sw-description` uses \[pure\]
//! - `bundle`: `sw-description`, its ed25519 signature, verification before extraction, the
//!   hash check while streaming \[pure\]
//! - `ddi`: the hawkBit DDI API: lenient reading of the controller base, deploymentBase and
//!   cancelAction replies, polling with jitter, configData and feedback documents \[pure\]
//! - `state`: the stages of an action, the cancel and offer decisions, the status document,
//!   the SSE `fleet` event and the `pocketses_fleet_*` families \[pure\]
//! - `client`: the DDI exchanges over `net::http`, the token only to the server's origin \[io\]
//! - `download`: resumable, hashed, size-bounded downloads \[io\]
//! - `daemon`: the poll loop and the action task in the daemon \[io\]
//! - `status`: `pocketses fleet status|poll|history` \[io\]
//! - `apply`: verify, extract and apply a bundle through snapd, following each change; the
//!   plan (order, `dangerous` or not) is pure \[io at the edges\]
//! - `journal`: `fleet.json`, the record that lets an action resume after a restart \[io\]
//! - `cmd`: `pocketses bundle create|sign|verify|show|apply` \[io\]
//!
//! docs/fleet.md describes the format and the security rules.

pub mod apply;
pub mod bundle;
pub mod client;
pub mod cmd;
pub mod cpio;
pub mod daemon;
pub mod ddi;
pub mod download;
pub mod journal;
pub mod libconfig;
pub mod state;
pub mod status;
