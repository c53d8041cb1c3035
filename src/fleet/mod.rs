//! Fleet updates: signed update bundles, and (to come) the hawkBit DDI client that takes them
//! from a fleet server such as gooseBit and applies them through snapd.
//!
//! - `cpio`: the newc archive format, streaming reader with the bundle's refusals, and writer \[pure\]
//! - `libconfig`: the subset of libconfig `sw-description` uses \[pure\]
//! - `bundle`: `sw-description`, its ed25519 signature, verification before extraction, the
//!   hash check while streaming \[pure\]
//! - `ddi`: the hawkBit DDI API: lenient reading of the controller base, deploymentBase and
//!   cancelAction replies, polling with jitter, configData and feedback documents \[pure\]
//! - `apply`: verify, extract and apply a bundle through snapd, following each change; the
//!   plan (order, `dangerous` or not) is pure \[io at the edges\]
//! - `journal`: `fleet.json`, the record that lets an action resume after a restart \[io\]
//! - `cmd`: `pocketses bundle create|sign|verify|show|apply` \[io\]
//!
//! docs/fleet.md describes the format and the security rules.

pub mod apply;
pub mod bundle;
pub mod cmd;
pub mod cpio;
pub mod ddi;
pub mod journal;
pub mod libconfig;
