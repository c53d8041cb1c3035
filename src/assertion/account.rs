//! account (in progress).
