//! Remodel: pre-flight plan (pure) and driving snapd's change (io).

pub mod cmd;
