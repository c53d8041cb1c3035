//! openpgp (in progress).
