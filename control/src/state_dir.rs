//! The daemon's state directory (`--state-dir`, by default
//! `/var/lib/msee/NAME`, NAME the network namespace or `host`): what one
//! instance keeps across its own restarts. `bpf/` is a bpffs of its own
//! holding the pinned program attachments and maps (forwarding goes on
//! while no daemon runs, and the next one adopts them); other files hold
//! the records an operator reads later. A lock file makes the directory
//! one daemon's at a time.
use std::{
    fs::File,
    io::{Read as _, Seek as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// Where an instance keeps its state when `--state-dir` is not given.
pub const DEFAULT_ROOT: &str = "/var/lib/msee";

/// The default state directory of the daemon of network namespace `netns`
/// (`None`: the host's).
pub fn default_for(netns: Option<&str>) -> PathBuf {
    Path::new(DEFAULT_ROOT).join(netns.unwrap_or("host"))
}

/// A state directory, locked for this process while the value lives.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    _lock: Flock<File>,
}

impl StateDir {
    /// Creates `root` (mode 0700) if needed and takes its lock; refuses
    /// when another process holds it, naming that process.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("creating the state directory {}", root.display()))?;
        let path = root.join("lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::Error::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("msee-daemon (pid {holder})")
                };
                bail!(
                    "{who} uses the state directory {}: stop it first, or give this one another --state-dir",
                    root.display()
                );
            }
            Err((_, e)) => bail!("locking {}: {e}", path.display()),
        };
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file or directory of the state.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The instance's bpffs, mounted if it is not yet.
    pub fn bpf(&self) -> Result<PathBuf> {
        let dir = bpf_dir(&self.root);
        msee_sys::bpffs::ensure_mounted(&dir)?;
        Ok(dir)
    }
}

/// Where the bpffs of the state directory `root` is mounted.
pub fn bpf_dir(root: &Path) -> PathBuf {
    root.join("bpf")
}

/// Moves a state file that cannot be read aside (`NAME.corrupt-UNIXTIME`),
/// so that nothing is silently reset and the operator can look at it;
/// returns where it went.
pub fn set_aside(path: &Path) -> Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path
        .file_name()
        .context("a state file has a name")?
        .to_os_string();
    name.push(format!(".corrupt-{secs}"));
    let to = path.with_file_name(name);
    std::fs::rename(path, &to)
        .with_context(|| format!("setting {} aside as {}", path.display(), to.display()))?;
    Ok(to)
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old
/// content or the new one, never a mix: a temporary file, synced, then
/// renamed over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("msee-state-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_state_directory_is_one_process_at_a_time() {
        let dir = scratch("lock");
        let first = StateDir::open(&dir).unwrap();
        let e = StateDir::open(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("--state-dir"),
            "{e}"
        );
        drop(first);
        let again = StateDir::open(&dir).unwrap();
        assert_eq!(again.path("usage.json"), dir.join("usage.json"));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_set_aside_keeps_its_content_under_another_name() {
        let dir = scratch("aside");
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("history.json");
        write_atomically(&f, b"{not json").unwrap();
        let to = set_aside(&f).unwrap();
        assert!(!f.exists());
        assert!(
            to.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("history.json.corrupt-")
        );
        assert_eq!(std::fs::read(&to).unwrap(), b"{not json");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_directory_is_per_namespace() {
        assert_eq!(
            default_for(Some("lab-msee")),
            Path::new("/var/lib/msee/lab-msee")
        );
        assert_eq!(default_for(None), Path::new("/var/lib/msee/host"));
    }
}
