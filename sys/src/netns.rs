//! Network namespaces: a thread enters one with `setns(2)`, after which the
//! sockets, netlink requests and ifindexes it uses are that namespace's.
//! Threads inherit the namespace they are created in, so a process enters
//! one before it starts any other thread, and work in several namespaces
//! is done on threads of their own ([`on_thread`]) or by entering and
//! returning ([`within`]).
//!
//! A namespace is named as `ip netns` names it (a file under `/run/netns`),
//! or by a path to its file (anything with a `/`, e.g. `/proc/PID/ns/net`).
use std::{
    fs::File,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use nix::sched::{CloneFlags, setns};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network namespace {ns} not found ({path}): {source}")]
    NotFound {
        ns: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("entering network namespace {ns}: {source}")]
    Enter {
        ns: String,
        #[source]
        source: nix::Error,
    },
    #[error("returning to the thread's own network namespace: {0}")]
    Return(#[source] nix::Error),
    #[error("opening the thread's own network namespace: {0}")]
    Own(#[source] std::io::Error),
    #[error("the thread in network namespace {0} panicked")]
    Panicked(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The file of namespace `ns`: a name under `/run/netns`, or a path.
pub fn path(ns: &str) -> PathBuf {
    if ns.contains('/') {
        PathBuf::from(ns)
    } else {
        Path::new(NETNS_DIR).join(ns)
    }
}

/// Whether namespace `ns` exists.
pub fn exists(ns: &str) -> bool {
    path(ns).exists()
}

fn open(ns: &str) -> Result<File> {
    let path = path(ns);
    File::open(&path).map_err(|source| Error::NotFound {
        ns: ns.to_owned(),
        path,
        source,
    })
}

/// Move the calling thread into namespace `ns`, for good.
pub fn enter(ns: &str) -> Result<()> {
    let file = open(ns)?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| Error::Enter {
        ns: ns.to_owned(),
        source,
    })
}

/// Run `f` with the calling thread inside `ns`, then return the thread to
/// the namespace it was in (also when `f` fails; if it panics, the thread
/// stays in `ns`).
pub fn within<T>(ns: &str, f: impl FnOnce() -> T) -> Result<T> {
    let own = File::open("/proc/thread-self/ns/net").map_err(Error::Own)?;
    enter(ns)?;
    let out = f();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET).map_err(Error::Return)?;
    Ok(out)
}

/// Run `f` on a new thread inside `ns` and wait for it. What `f` makes
/// there (sockets, loaded programs) stays in `ns` after the thread ends.
pub fn on_thread<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    // Opened here so a missing namespace is reported without a thread.
    let file = open(ns)?;
    let name = ns.to_owned();
    std::thread::spawn(move || -> Result<T> {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|source| Error::Enter { ns: name, source })?;
        Ok(f())
    })
    .join()
    .map_err(|_| Error::Panicked(ns.to_owned()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(path("lab1-msee"), Path::new("/run/netns/lab1-msee"));
        assert_eq!(path("/proc/1/ns/net"), Path::new("/proc/1/ns/net"));
        assert!(!exists("no-such-namespace-here"));
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let e = enter("no-such-namespace").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "network namespace no-such-namespace not found (/run/netns/no-such-namespace)"
            ),
            "{e}"
        );
        assert!(matches!(
            on_thread("no-such-namespace", || ()),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            within("no-such-namespace", || ()),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn the_own_namespace_round_trips() {
        // Entering the namespace the thread is already in needs no lab, and
        // only root may setns: elsewhere the error must say so.
        let own = "/proc/thread-self/ns/net";
        match within(own, || 7) {
            Ok(v) => assert_eq!(v, 7),
            Err(Error::Enter { source, .. }) => assert_eq!(source, nix::Error::EPERM),
            Err(e) => panic!("{e}"),
        }
    }
}
