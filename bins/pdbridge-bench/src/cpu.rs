//! CPU time of the server under test and of the bench itself, from `/proc/<pid>/stat`.
//!
//! A ratio against the bare baseline means something only when the baseline was limited by its
//! own core, not by the load generator: [`CpuMeter`] samples `utime + stime` of the server
//! process and of this process over a measured window, and [`CpuUse::server_bound`] says whether
//! the server used at least [`SERVER_BOUND_SHARE`] of one core.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The share of one core the baseline server must use for its run to count as server-bound.
pub const SERVER_BOUND_SHARE: f64 = 0.90;

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on every Linux ABI in use).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// Parses `utime + stime` (clock ticks) out of a `/proc/<pid>/stat` line.
///
/// The command name (field 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`: the state is the first of them, `utime` and `stime` the 12th and 13th.
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time used so far by every thread of `pid` (`None` where `/proc` is missing or the
/// process is gone).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&text)?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// CPU time used so far by this process (the load generator, and the fakes when they run).
pub fn own_cpu() -> Option<Duration> {
    process_cpu(std::process::id())
}

/// CPU use over one measured window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    /// Wall time of the window, seconds.
    pub window_s: f64,
    /// CPU seconds the server process used in the window.
    pub server_cpu_s: f64,
    /// `server_cpu_s / window_s`: 1.0 is one core fully busy.
    pub server_cores: f64,
    /// CPU seconds this process (load generator and fakes) used in the window.
    pub generator_cpu_s: f64,
    /// `generator_cpu_s / window_s`.
    pub generator_cores: f64,
}

impl CpuUse {
    /// Whether the server used at least [`SERVER_BOUND_SHARE`] of one core.
    pub fn server_bound(&self) -> bool {
        self.server_cores >= SERVER_BOUND_SHARE
    }

    /// Microseconds of server CPU per request, over `requests` requests.
    pub fn server_us_per(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.server_cpu_s * 1e6 / requests as f64)
    }

    /// Microseconds of generator CPU per request, over `requests` requests.
    pub fn generator_us_per(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.generator_cpu_s * 1e6 / requests as f64)
    }
}

/// CPU times at the start of a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    at: Instant,
    server: Option<Duration>,
    own: Option<Duration>,
}

impl CpuMeter {
    /// Starts a window for the server process `pid`.
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            at: Instant::now(),
            server: process_cpu(pid),
            own: own_cpu(),
        }
    }

    /// Ends the window; `None` where `/proc` could not be read.
    pub fn finish(&self) -> Option<CpuUse> {
        let server = process_cpu(self.pid)?.checked_sub(self.server?)?;
        let own = own_cpu()?.checked_sub(self.own?)?;
        let window = self.at.elapsed().as_secs_f64();
        if window <= 0.0 {
            return None;
        }
        Some(CpuUse {
            window_s: window,
            server_cpu_s: server.as_secs_f64(),
            server_cores: server.as_secs_f64() / window,
            generator_cpu_s: own.as_secs_f64(),
            generator_cores: own.as_secs_f64() / window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let line = "4242 (we (ird) name) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 99 0 0";
        assert_eq!(parse_stat_ticks(line), Some(300));
        assert_eq!(parse_stat_ticks("4242 (x) R 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows_when_busy() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        // Spin until a clock tick was charged (a generous bound: the machine may be busy).
        let meter = CpuMeter::start(std::process::id());
        let give_up = Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let used = meter.finish().expect("own /proc/self/stat");
            if used.server_cpu_s > 0.0 || Instant::now() > give_up {
                break used;
            }
        };
        assert!(used.server_cpu_s > 0.0, "{used:?}");
    }

    #[test]
    fn server_bound_threshold() {
        let mut u = CpuUse {
            window_s: 10.0,
            server_cpu_s: 9.0,
            server_cores: 0.9,
            generator_cpu_s: 5.0,
            generator_cores: 0.5,
        };
        assert!(u.server_bound());
        assert_eq!(u.server_us_per(90_000), Some(100.0));
        assert_eq!(u.server_us_per(0), None);
        u.server_cores = 0.899;
        assert!(!u.server_bound());
    }
}
