//! The failure detectors' own thread: the carrier monitor and BFD run on a
//! single-threaded tokio runtime of their own, on a thread with real-time
//! priority (SCHED_FIFO) when the system allows it. A busy machine (or a
//! busy main loop installing a million routes) then cannot delay the
//! moment a failed link is flipped: detection to flip stays in the
//! sub-millisecond range instead of waiting for a CPU.
use anyhow::{Context as _, Result};
use tracing::{info, warn};

/// Real-time priority of the detectors' thread (1..99; kernel threads
/// such as ksoftirqd run at SCHED_OTHER, the migration threads at 99).
const RT_PRIORITY: libc::c_int = 20;

/// Starts the thread and returns a handle to spawn tasks on its runtime
/// (and to `enter` it, so sockets made by `Bfd::start` or the link monitor
/// register with its reactor). The thread lives as long as the process.
pub fn start() -> Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("detectors".into())
        .spawn(move || {
            raise_priority();
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            rt.block_on(std::future::pending::<()>());
        })
        .context("starting the detectors' thread")?;
    rx.recv()
        .context("the detectors' thread did not start")?
        .context("building the detectors' runtime")
}

/// SCHED_FIFO for the calling thread, or (where real-time scheduling is not
/// allowed, e.g. a cgroup without an RT budget) the highest nice value.
fn raise_priority() {
    let param = libc::sched_param {
        sched_priority: RT_PRIORITY,
    };
    // SAFETY: pid 0 is the calling thread; param is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
        info!(
            priority = RT_PRIORITY,
            "failure detectors run at real-time priority (SCHED_FIFO)"
        );
        return;
    }
    let fifo_error = std::io::Error::last_os_error();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: PRIO_PROCESS with a thread id sets that thread's nice value.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -20) } == 0 {
        warn!(
            "no real-time priority for the failure detectors ({fifo_error}); running them at nice -20"
        );
    } else {
        warn!(
            "no real-time priority ({fifo_error}) nor nice -20 ({}) for the failure detectors: a busy machine may delay failover",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_the_detectors_thread() {
        let handle = start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        });
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(),
            Some("detectors".to_owned())
        );
    }
}
