//! Snap assertions: decode, encode, typed views, signatures and the chain of trust. [pure]

pub mod cmd;
