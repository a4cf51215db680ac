//! App-under-test processes: spawn, poll for exit with a precise exit time, SIGKILL, bounded waits, and memory read
//! from `/proc/PID/status`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::app::AppArgs;
use crate::ledger::{Ledger, now_ms};
use crate::verdict::ProcessRun;

/// How often exits are polled: the precision of the measured exit time.
pub const POLL: Duration = Duration::from_millis(1);

/// How often [`AppProcess::poll`] samples the process's memory.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// How an app process ended.
#[derive(Debug, Clone, Copy)]
pub struct ExitInfo {
    /// When the harness saw it exit, wall-clock milliseconds since the epoch (within [`POLL`]).
    pub at_ms: u64,
    /// Its exit status.
    pub status: ExitStatus,
}

/// One running app-under-test process.
#[derive(Debug)]
pub struct AppProcess {
    label: String,
    child: Child,
    ledger_path: PathBuf,
    exit: Option<ExitInfo>,
    killed: bool,
    peak_rss_kib: Option<u64>,
    last_sample: Option<Instant>,
}

impl AppProcess {
    /// Spawns `scenarios app ...` with its output in `<log_dir>/<label>.log`.
    ///
    /// # Errors
    /// When the process cannot be spawned.
    pub fn spawn(
        scenarios_exe: &Path,
        label: &str,
        args: &AppArgs,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log =
            File::create(log_dir.join(format!("{label}.log"))).context("creating the app log")?;
        let log_err = log.try_clone().context("cloning the app log handle")?;
        let child = Command::new(scenarios_exe)
            .arg("app")
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning app {label}"))?;
        Ok(Self {
            label: label.to_owned(),
            child,
            ledger_path: args.ledger.clone(),
            exit: None,
            killed: false,
            peak_rss_kib: None,
            last_sample: None,
        })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Polls once: the exit, if it has happened (the first poll that sees it stamps the time).
    pub fn poll(&mut self) -> Option<ExitInfo> {
        if self.exit.is_none() {
            if self
                .last_sample
                .is_none_or(|sampled| sampled.elapsed() >= MEMORY_SAMPLE_EVERY)
            {
                self.sample_memory();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(ExitInfo {
                    at_ms: now_ms(),
                    status,
                });
            }
        }
        self.exit
    }

    /// Waits for the exit, polling every [`POLL`]; past `timeout` the process is killed and this is an error.
    ///
    /// # Errors
    /// When the process does not exit within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitInfo> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.poll() {
                return Ok(exit);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!("{} did not exit within {timeout:?}", self.label);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends SIGKILL (`Child::kill` on Unix) and reaps the process.
    pub fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.sample_memory();
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.exit = Some(ExitInfo {
                at_ms: now_ms(),
                status,
            });
        }
        self.killed = true;
    }

    /// Samples the peak resident set size while the process runs.
    pub fn sample_memory(&mut self) -> Option<Memory> {
        self.last_sample = Some(Instant::now());
        let memory = Memory::of(self.pid())?;
        self.peak_rss_kib = self.peak_rss_kib.max(Some(memory.peak_rss_kib));
        Some(memory)
    }

    /// The highest peak RSS seen by the harness's samples, KiB.
    #[must_use]
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.peak_rss_kib
    }

    /// Reads the ledger and returns the run for the verdict (the process must have exited or been killed).
    ///
    /// # Errors
    /// When the ledger cannot be read or parsed.
    pub fn finish(mut self) -> anyhow::Result<(ProcessRun, Option<ExitInfo>)> {
        if self.exit.is_none() {
            self.kill();
        }
        let ledger = Ledger::read(&self.ledger_path)?;
        Ok((
            ProcessRun {
                label: self.label.clone(),
                ledger,
                killed: self.killed,
            },
            self.exit,
        ))
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: peak resident set size, KiB.
    pub peak_rss_kib: u64,
}

impl Memory {
    /// Reads the memory of process `pid` (`None` when it is gone or the fields are absent, e.g. a zombie).
    #[must_use]
    pub fn of(pid: u32) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    /// Reads the memory of this process.
    #[must_use]
    pub fn of_self() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    /// Parses the text of a `/proc/PID/status` file.
    #[must_use]
    pub fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(':')?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        Some(Self {
            rss_kib: field("VmRSS")?,
            peak_rss_kib: field("VmHWM")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_memory_fields_are_parsed_in_kib() {
        let status = "Name:\tapp\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";

        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_kib: 10_240,
                peak_rss_kib: 20_480
            })
        );
    }

    #[test]
    fn a_status_without_memory_fields_has_no_memory() {
        assert_eq!(Memory::parse("Name:\tzombie\nState:\tZ (zombie)\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let memory = Memory::of_self().unwrap();

        assert!(memory.rss_kib > 0 && memory.peak_rss_kib >= memory.rss_kib);
    }
}
