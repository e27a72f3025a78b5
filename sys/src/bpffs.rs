//! bpffs: a BPF object (map, program, link) pinned on a bpf filesystem
//! outlives the process that made it. Each mount of bpffs is a filesystem
//! of its own, so an instance that mounts one in its state directory keeps
//! its pins apart from every other instance's and removes them all by
//! unmounting it.
use std::path::{Path, PathBuf};

use nix::{
    mount::{MntFlags, MsFlags},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting bpffs on {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unmounting bpffs from {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("reading the filesystem of {path}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Whether `dir` is the root of a mounted bpffs (or a directory in one).
pub fn is_bpffs(dir: &Path) -> Result<bool, Error> {
    match statfs(dir) {
        Ok(fs) => Ok(fs.filesystem_type() == BPF_FS_MAGIC),
        Err(nix::Error::ENOENT) => Ok(false),
        Err(source) => Err(Error::Stat {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Makes `dir` a bpffs of its own (root only, mode 0700), unless it
/// already is one (a previous run's, whose pins are then still there).
pub fn ensure_mounted(dir: &Path) -> Result<(), Error> {
    if is_bpffs(dir)? {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Create {
        path: dir.to_owned(),
        source,
    })?;
    nix::mount::mount(
        Some("bpf"),
        dir,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .map_err(|source| Error::Mount {
        path: dir.to_owned(),
        source,
    })
}

/// Unmounts the bpffs at `dir` (every pin in it goes; an object nothing
/// else holds is freed) and removes the directory. Nothing to do when
/// `dir` is not a bpffs.
pub fn unmount(dir: &Path) -> Result<(), Error> {
    if !is_bpffs(dir)? {
        return Ok(());
    }
    // Lazily: a pin some process still has open goes with the last close.
    nix::mount::umount2(dir, MntFlags::MNT_DETACH).map_err(|source| Error::Unmount {
        path: dir.to_owned(),
        source,
    })?;
    let _ = std::fs::remove_dir(dir);
    Ok(())
}
