//! Runtimes beside the server's own, each started on first use: the forks'
//! ([`crate::fork::runtime`]) and WebSocket delivery's ([`crate::http::ws::delivery`]). Work
//! that must not wait behind other work gets worker threads of its own, and work that should
//! yield to the rest gets threads of a lower CPU priority.

use std::sync::OnceLock;

/// A multi-threaded tokio runtime started at the first [`LazyRuntime::handle`], whose worker
/// (and blocking) threads run `nice` levels below the priority of the thread that started it.
pub struct LazyRuntime {
    name: &'static str,
    threads: usize,
    nice: i32,
    runtime: OnceLock<Owned>,
}

/// A runtime that is shut down without blocking when dropped (the state may be dropped inside
/// another runtime, where a blocking shutdown panics).
struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl LazyRuntime {
    /// A runtime of `threads` workers named `name`, `nice` levels below normal priority (0:
    /// the same priority).
    pub const fn new(name: &'static str, threads: usize, nice: i32) -> Self {
        Self {
            name,
            threads,
            nice,
            runtime: OnceLock::new(),
        }
    }

    /// The runtime's handle, starting it at the first call.
    pub fn handle(&self) -> anyhow::Result<tokio::runtime::Handle> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(Self::live(runtime));
        }
        let nice = self.nice;
        // Wrapped at once: when two first calls race, the loser's runtime is dropped here,
        // possibly inside a task, where only a non-blocking shutdown may happen.
        let fresh = Owned(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.threads)
                .thread_name(self.name)
                .thread_stack_size(crate::cli::WORKER_STACK_BYTES)
                .on_thread_start(move || lower_priority(nice))
                .enable_all()
                .build()?,
        ));
        Ok(Self::live(self.runtime.get_or_init(|| fresh)))
    }

    fn live(runtime: &Owned) -> tokio::runtime::Handle {
        runtime.0.as_ref().expect("live runtime").handle().clone()
    }
}

/// Lowers the calling thread's CPU priority by `levels` nice levels (at most to 19). Linux
/// schedules threads one by one, so this touches only the calling thread (and threads it
/// starts later, which inherit it); elsewhere, and where the system refuses, nothing changes.
pub fn lower_priority(levels: i32) {
    #[cfg(target_os = "linux")]
    if levels > 0 {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = rustix::thread::gettid();
        if let Ok(current) = getpriority_process(Some(thread)) {
            // Raising one's own nice value needs no privilege; failing leaves it as it was.
            let _ = setpriority_process(Some(thread), (current + levels).min(19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = levels;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lowered_runtime_runs_below_the_thread_that_started_it() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).expect("nice");
        let here = nice();
        let lowered = LazyRuntime::new("test-lowered", 1, 3);
        let same = LazyRuntime::new("test-same", 1, 0);
        let on = |runtime: &LazyRuntime| {
            let handle = runtime.handle().expect("runtime");
            std::thread::scope(|s| {
                s.spawn(|| handle.block_on(async { handle.spawn(async move { nice() }).await }))
                    .join()
                    .expect("thread")
                    .expect("task")
            })
        };
        assert_eq!(on(&lowered), (here + 3).min(19));
        assert_eq!(on(&same), here);
        assert_eq!(nice(), here, "the starting thread keeps its priority");
    }
}
