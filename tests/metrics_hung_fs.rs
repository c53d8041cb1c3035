//! A filesystem whose server never answers statfs: `pocketses metrics` still finishes, and
//! reports that mount without usage.
//!
//! The dead server is a real FUSE mount made by this test: it speaks the kernel's FUSE protocol
//! on /dev/fuse just enough to finish `INIT`, then never reads another request, so statfs waits
//! as it does on a hard NFS mount whose server went away: forever, but killable (a request the
//! server has read and not answered would not even let the process exit). Needs root and
//! /dev/fuse. CI has both, so there (`POCKETSES_CI` or `CI` set, as `tests/run` and `.ci/run`
//! do) a mount that fails fails the test; elsewhere the test says on the terminal why it
//! checked nothing. The mount is made with mount(2) directly: no FUSE userland is needed.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FUSE_INIT: u32 = 26;

/// A FUSE mount whose statfs hangs until the mount is dropped.
struct HungMount {
    target: PathBuf,
    /// Open but never read again: closing it would abort the connection and end the hang.
    dev: Option<File>,
    _dir: tempfile::TempDir,
}

impl HungMount {
    /// Mounts a dead FUSE filesystem, or `None` (with the reason) where this host cannot.
    fn mount() -> Result<HungMount, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        let dev = File::options()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map_err(|e| format!("/dev/fuse: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let target = dir.path().join("dead");
        std::fs::create_dir(&target).map_err(|e| e.to_string())?;
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let source = c("pocketses-dead");
        let fstype = c("fuse.pocketses-dead");
        let ctarget = c(target.to_str().expect("utf-8 temp path"));
        let opts = c(&format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd()));
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                ctarget.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!("mount: {}", std::io::Error::last_os_error()));
        }
        let mut mount = HungMount { target, dev: None, _dir: dir };
        let mut dev = dev;
        init(&mut dev).map_err(|e| format!("FUSE INIT: {e}"))?;
        mount.dev = Some(dev);
        Ok(mount)
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        let Ok(ctarget) = std::ffi::CString::new(self.target.as_os_str().as_encoded_bytes()) else {
            return;
        };
        // SAFETY: a NUL-terminated path. Lazy, then the device closes: the connection is
        // aborted and anything still waiting on statfs gets an error.
        unsafe { libc::umount2(ctarget.as_ptr(), libc::MNT_DETACH) };
        self.dev = None;
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_ne_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// Reads the kernel's `INIT` request and accepts it; after that the server is dead.
fn init(dev: &mut File) -> std::io::Result<()> {
    // The kernel refuses reads into buffers smaller than a request can be.
    let mut buf = vec![0u8; 1 << 20];
    let n = dev.read(&mut buf)?;
    let opcode = u32_at(&buf, 4);
    if n < 48 || opcode != FUSE_INIT {
        return Err(std::io::Error::other(format!("expected INIT, got opcode {opcode}")));
    }
    let unique = u64_at(&buf, 8);
    let major = u32_at(&buf, 40);
    let minor = u32_at(&buf, 44);
    // fuse_out_header (len, error, unique), then fuse_init_out: major, minor, max_readahead,
    // flags, max_background, congestion_threshold, max_write, time_gran, zeros (64 bytes).
    let mut msg = vec![0u8; 16 + 64];
    msg[0..4].copy_from_slice(&80u32.to_ne_bytes());
    msg[8..16].copy_from_slice(&unique.to_ne_bytes());
    msg[16..20].copy_from_slice(&major.min(7).to_ne_bytes());
    msg[20..24].copy_from_slice(&minor.min(31).to_ne_bytes());
    msg[40..44].copy_from_slice(&4096u32.to_ne_bytes());
    msg[44..48].copy_from_slice(&1u32.to_ne_bytes());
    dev.write_all(&msg)
}

/// Whether this is a CI run, where root and /dev/fuse are given and a skip would hide a defect.
fn in_ci() -> bool {
    ["POCKETSES_CI", "CI"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// Says why nothing was checked. Written to the process's stderr, not through `eprintln!`,
/// which the test harness captures and shows only for failing tests.
fn skip(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "metrics_hung_fs: SKIPPED, nothing checked: cannot make a FUSE mount here ({why}); \
         CI (POCKETSES_CI=1) fails instead"
    );
}

fn filesystem<'a>(snapshot: &'a serde_json::Value, mount: &Path) -> Option<&'a serde_json::Value> {
    let mount = mount.to_str()?;
    snapshot["filesystems"].as_array()?.iter().find(|f| f["mount_point"] == mount)
}

#[test]
fn a_dead_filesystem_does_not_hang_the_collection() {
    let mount = match HungMount::mount() {
        Ok(mount) => mount,
        Err(why) if in_ci() => {
            panic!("cannot make a FUSE mount in CI, which has root and /dev/fuse: {why}")
        }
        Err(why) => {
            skip(&why);
            return;
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["metrics", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pocketses");
    // A bound so that a regression fails instead of hanging the suite; not a speed check.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`pocketses metrics` hung on a filesystem that does not answer");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let fs = filesystem(&snapshot, &mount.target).expect("the dead mount is listed");
    assert_eq!(fs["fs_type"], "fuse.pocketses-dead", "{fs}");
    assert!(fs["total_bytes"].is_null(), "usage of a dead filesystem: {fs}");
    // The live filesystems still have their usage.
    let with_usage = snapshot["filesystems"]
        .as_array()
        .expect("filesystems")
        .iter()
        .filter(|f| f["total_bytes"].is_u64())
        .count();
    assert!(with_usage > 0, "{}", snapshot["filesystems"]);
    drop(mount);
}
