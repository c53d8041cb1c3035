//! `remove`: leave nothing behind in `$SNAP_COMMON`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// Runs the hook.
///
/// # Errors
/// When `SNAP_COMMON` is unset or an entry cannot be removed.
pub async fn run() -> anyhow::Result<ExitCode> {
    let common = std::env::var_os("SNAP_COMMON")
        .filter(|v| !v.is_empty())
        .context("SNAP_COMMON is not set")?;
    empty_dir(Path::new(&common))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes everything inside `dir`, keeping `dir` itself (snapd removes it).
fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let res = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        res.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empties_nested_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "x").unwrap();
        std::fs::write(dir.path().join("g"), "y").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        empty_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(Path::new("/etc").exists());
        empty_dir(&dir.path().join("missing")).unwrap();
    }
}
