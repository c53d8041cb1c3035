//! Gadget layouts (`gadget.yaml`) and snapd's rules for compatible layout changes. [pure]

pub mod cmd;
