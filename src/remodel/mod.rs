//! Remodel: pre-flight plan (pure) and driving snapd's change (io).
//!
//! [`mod@plan`] decides, without I/O, whether snapd would accept a remodel; what changes is
//! [`crate::assertion::model::diff`].
//! [`view`] turns successive states of snapd's change into lines and events, without I/O.
//! [`drive`] posts the new model, follows the change and records it so the daemon can re-attach.
//! [`cmd`] is the `pocketses remodel` command that ties them together.

pub mod cmd;
pub mod drive;
pub mod plan;
pub mod view;

pub use plan::{plan, Context, Plan, Refusal};
