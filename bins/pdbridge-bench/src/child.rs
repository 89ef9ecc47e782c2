//! Servers under test as separate processes, and what the bench reads about them from `/proc`.
//!
//! [`ServerProcess::spawn`] starts this very binary with a hidden `__serve-*` subcommand (so the
//! same code path works from `cargo run` and from integration tests), pinned to one core with
//! `taskset` when it exists and there is more than one core, and waits for the child's
//! `LISTENING <addr>` line on stdout. The child's stderr is discarded unless
//! `PDBRIDGE_BENCH_SERVER_LOGS` is set.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

/// The line prefix a `__serve-*` child prints once it accepts connections.
pub const LISTENING: &str = "LISTENING ";

/// How the bench places processes on cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pinning {
    /// The core the server runs on, when pinned.
    pub server_core: Option<usize>,
}

impl Pinning {
    /// Pins the server to core 0 when `taskset` exists and the machine has more than one core.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let server_core = (cores > 1 && taskset_available()).then_some(0);
        Self { server_core }
    }

    /// No pinning at all.
    pub fn none() -> Self {
        Self { server_core: None }
    }
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Moves every thread of the current process off the server's core (best effort), so the load
/// generator and the server do not share a core.
pub fn pin_self_away(pinning: Pinning) {
    let Some(core) = pinning.server_core else {
        return;
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let others: Vec<String> = (0..cores)
        .filter(|c| *c != core)
        .map(|c| c.to_string())
        .collect();
    if others.is_empty() {
        return;
    }
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", &others.join(",")])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running server child.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `current_exe() <args>` (under `taskset` when pinned) and waits up to `timeout` for
    /// its `LISTENING` line.
    pub fn spawn(args: &[String], pinning: Pinning, timeout: Duration) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        Self::spawn_exe(&exe, args, pinning, timeout)
    }

    /// Like [`ServerProcess::spawn`] with an explicit executable.
    pub fn spawn_exe(
        exe: &Path,
        args: &[String],
        pinning: Pinning,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut cmd = match pinning.server_core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        if std::env::var_os("PDBRIDGE_BENCH_SERVER_LOGS").is_some() {
            cmd.stderr(Stdio::inherit());
        } else {
            cmd.stderr(Stdio::null());
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    let _ = tx.send(addr.trim().to_owned());
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let addr = match rx.recv_timeout(timeout) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("server did not report LISTENING within {timeout:?} (exit: {status:?})");
            }
        };
        let addr = addr
            .parse()
            .with_context(|| format!("server reported a bad address {addr:?}"))?;
        Ok(Self { child, addr })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's memory as seen in `/proc/<pid>/status`.
    pub fn memory(&self) -> Option<Memory> {
        Memory::of(self.pid())
    }

    /// `kill -9` and reap.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait().context("reaping the server")?;
        Ok(())
    }

    /// Asks the child to stop with SIGTERM and waits up to `grace` before SIGKILL.
    pub fn terminate(mut self, grace: Duration) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill9()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of a process, in KiB, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Current resident set (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set (`VmHWM`).
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads the memory of `pid`; `None` where `/proc` is missing or the process is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        parse_status(&text)
    }
}

/// Parses `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// The size in bytes of a SQLite database's write-ahead log (`<db>-wal`), 0 when absent.
pub fn wal_size(db: &Path) -> u64 {
    let mut wal = PathBuf::from(db.as_os_str());
    wal.as_mut_os_string().push("-wal");
    std::fs::metadata(&wal).map_or(0, |m| m.len())
}

/// A loopback address with a port that was free a moment ago.
pub fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub nproc: usize,
    /// The CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Whether the binary was built with optimizations.
    pub release_build: bool,
    /// Core placement.
    pub pinning: Pinning,
}

impl Machine {
    /// Describes this machine.
    pub fn detect(pinning: Pinning) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            release_build: !cfg!(debug_assertions),
            pinning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tx\nVmPeak:\t  1000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss_kib: 1024,
                hwm_kib: 2048
            })
        );
        assert_eq!(parse_status("Name: x\n"), None);
    }

    #[test]
    fn own_memory_is_readable_on_linux() {
        if Path::new("/proc/self/status").exists() {
            let m = Memory::of(std::process::id()).expect("own status");
            assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        }
    }

    #[test]
    fn wal_size_of_missing_file_is_zero() {
        assert_eq!(wal_size(Path::new("/nonexistent/db.sqlite")), 0);
    }
}
