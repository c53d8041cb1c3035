//! Where pocketses keeps its files, in a snap and outside one. \[io\]: reads the environment.
//!
//! The state directory holds the control socket and `remodel.json`. The daemon and every command
//! compute it with [`state_dir`], so `pocketses status` finds a daemon started by hand:
//!
//! 1. `POCKETSES_STATE_DIR` (the daemon's and `status`' `--state-dir` set it), when not empty;
//! 2. `$SNAP_DATA` inside a snap;
//! 3. `$XDG_RUNTIME_DIR/pocketses` for a user with a session;
//! 4. `/run/pocketses` for root, else `$TMPDIR/pocketses-UID`.

use std::path::PathBuf;

/// Overrides the state directory (tests, several daemons on one host).
pub const STATE_DIR_ENV: &str = "POCKETSES_STATE_DIR";

/// The `--state-dir DIR` flag of every command that uses the state directory (the daemon,
/// `status`, `spool status`), also read from `POCKETSES_STATE_DIR`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StateDirArg {
    /// The state directory: control socket, remodel record, and spools under DIR/spool
    /// [default: $SNAP_DATA in a snap, else $XDG_RUNTIME_DIR/pocketses, or /run/pocketses for root].
    #[arg(long = "state-dir", value_name = "DIR", env = STATE_DIR_ENV)]
    pub dir: Option<PathBuf>,
}

impl StateDirArg {
    /// Makes the flag the state directory of this process. Call it at start, while the process
    /// has one thread: [`state_dir`] reads the environment.
    pub fn apply(&self) {
        if let Some(dir) = &self.dir {
            std::env::set_var(STATE_DIR_ENV, dir);
        }
    }
}

/// The value of `var` as a path, when set and not empty (an empty variable counts as unset,
/// for every path variable pocketses reads).
pub fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The state directory (see the module documentation for the order).
pub fn state_dir() -> PathBuf {
    state_dir_from(&|var| env_path(var), effective_uid())
}

/// [`state_dir`] with the environment and uid passed in. \[pure\]
pub fn state_dir_from(env: &dyn Fn(&str) -> Option<PathBuf>, uid: u32) -> PathBuf {
    if let Some(dir) = env(STATE_DIR_ENV).or_else(|| env("SNAP_DATA")) {
        return dir;
    }
    if let Some(dir) = env("XDG_RUNTIME_DIR") {
        return dir.join("pocketses");
    }
    if uid == 0 {
        return PathBuf::from("/run/pocketses");
    }
    env("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp")).join(format!("pocketses-{uid}"))
}

/// The directory that holds one spool per sink (`spool/NAME/`), which must survive reboots:
///
/// 1. `$POCKETSES_STATE_DIR/spool` when the state directory is given (`--state-dir`);
/// 2. `$SNAP_COMMON/spool` inside a snap: kept across refreshes and reverts, unlike `$SNAP_DATA`,
///    so a refresh during an outage loses no backlog;
/// 3. `/var/lib/pocketses/spool` for root and `$XDG_STATE_HOME/pocketses/spool` (or
///    `~/.local/state/pocketses/spool`) for a user: not [`state_dir`], which is on a tmpfs
///    (`/run`) there and would lose the spool at reboot;
/// 4. `state_dir()/spool` when none of these is known.
pub fn spool_dir() -> PathBuf {
    spool_dir_from(&|var| env_path(var), effective_uid())
}

/// [`spool_dir`] with the environment and uid passed in. \[pure\]
pub fn spool_dir_from(env: &dyn Fn(&str) -> Option<PathBuf>, uid: u32) -> PathBuf {
    if let Some(dir) = env(STATE_DIR_ENV) {
        return dir.join("spool");
    }
    if let Some(dir) = env("SNAP_COMMON") {
        return dir.join("spool");
    }
    if uid == 0 {
        return PathBuf::from("/var/lib/pocketses/spool");
    }
    if let Some(dir) = env("XDG_STATE_HOME") {
        return dir.join("pocketses/spool");
    }
    if let Some(home) = env("HOME") {
        return home.join(".local/state/pocketses/spool");
    }
    state_dir_from(env, uid).join("spool")
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |var| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| PathBuf::from(v))
    }

    #[test]
    fn order_of_state_directories() {
        let all = [
            ("POCKETSES_STATE_DIR", "/s"),
            ("SNAP_DATA", "/var/snap/pocketses/x1"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ];
        assert_eq!(state_dir_from(&env(&all), 0), PathBuf::from("/s"));
        assert_eq!(state_dir_from(&env(&all[1..]), 0), PathBuf::from("/var/snap/pocketses/x1"));
        assert_eq!(
            state_dir_from(&env(&all[2..]), 1000),
            PathBuf::from("/run/user/1000/pocketses")
        );
        assert_eq!(state_dir_from(&env(&[]), 0), PathBuf::from("/run/pocketses"));
        assert_eq!(state_dir_from(&env(&[]), 1000), PathBuf::from("/tmp/pocketses-1000"));
        assert_eq!(
            state_dir_from(&env(&[("TMPDIR", "/var/tmp")]), 7),
            PathBuf::from("/var/tmp/pocketses-7")
        );
    }

    #[test]
    fn order_of_spool_directories() {
        let all = [
            ("POCKETSES_STATE_DIR", "/s"),
            ("SNAP_COMMON", "/var/snap/pocketses/common"),
            ("XDG_STATE_HOME", "/home/u/.state"),
            ("HOME", "/home/u"),
            ("SNAP_DATA", "/var/snap/pocketses/x1"),
        ];
        assert_eq!(spool_dir_from(&env(&all), 1000), PathBuf::from("/s/spool"));
        assert_eq!(
            spool_dir_from(&env(&all[1..]), 1000),
            PathBuf::from("/var/snap/pocketses/common/spool")
        );
        assert_eq!(spool_dir_from(&env(&all[2..]), 0), PathBuf::from("/var/lib/pocketses/spool"));
        assert_eq!(
            spool_dir_from(&env(&all[2..]), 1000),
            PathBuf::from("/home/u/.state/pocketses/spool")
        );
        assert_eq!(
            spool_dir_from(&env(&all[3..]), 1000),
            PathBuf::from("/home/u/.local/state/pocketses/spool")
        );
        assert_eq!(
            spool_dir_from(&env(&all[4..]), 1000),
            PathBuf::from("/var/snap/pocketses/x1/spool")
        );
        assert_eq!(spool_dir_from(&env(&[]), 7), PathBuf::from("/tmp/pocketses-7/spool"));
    }
}
