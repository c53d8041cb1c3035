//! pocketses: a device agent for Ubuntu Core appliances.
//!
//! One crate, one binary that is both the snap's daemon and its command line.
//! Modules are listed in reading order: configuration and the snapd client first,
//! then the metrics pipeline (collect, encode, publish), then assertions, gadget and remodel.
//! ARCHITECTURE.md has the bird's eye view and the invariants.

pub mod assertion;
pub mod checks;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod fleet;
pub mod gadget;
pub mod hooks;
pub mod hub;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod paths;
pub mod publish;
pub mod push;
pub mod remodel;
pub mod snapd;
pub mod spool;
pub mod status;
pub mod table;
pub mod yaml;
