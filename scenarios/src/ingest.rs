//! fake-ingest as a separate process: start on a free port, kill, restart on the same port and data directory, and
//! read what it stored through its control API.
//!
//! The fake-ingest command line is built in one place, [`fake_ingest_command`]; everything else goes through
//! [`FakeIngest`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fake_ingest::{CapturedEvent, Stats};
use serde_json::Value;

use crate::ledger::LEDGER_ID_PROPERTY;

/// How long fake-ingest may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The timeout of one control-API request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Events fetched per `/_fake/events` page.
const PAGE: usize = 5_000;

/// The command that runs fake-ingest with `args`: the `ingest` subcommand of the scenarios executable, which runs
/// fake-ingest's own command line in-process (`fake_ingest::cli::run`), so every process of a run is the same
/// executable and a SIGKILL of this process is a SIGKILL of the server.
#[must_use]
pub fn fake_ingest_command(scenarios_exe: &Path, args: &[OsString]) -> Command {
    let mut command = Command::new(scenarios_exe);
    command.arg("ingest").args(args);
    command
}

/// A fault plan in the JSON form of `docs/FAULTS.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlanJson(pub Value);

impl FaultPlanJson {
    /// The plan with no rules: every request is stored.
    #[must_use]
    pub fn healthy() -> Self {
        Self(serde_json::json!({ "rules": [] }))
    }

    /// A plan with the given rules.
    #[must_use]
    pub fn rules(rules: Vec<Value>) -> Self {
        Self(serde_json::json!({ "rules": rules }))
    }
}

/// A running (or crashed, or killed) fake-ingest process and its control client.
#[derive(Debug)]
pub struct FakeIngest {
    exe: PathBuf,
    dir: PathBuf,
    address: String,
    child: Option<Child>,
    starts: u32,
    agent: ureq::Agent,
}

impl FakeIngest {
    /// Starts fake-ingest on a free loopback port with `dir` for its data, plan file and log.
    ///
    /// # Errors
    /// When the process cannot start or does not print its address in time.
    pub fn start(
        scenarios_exe: &Path,
        dir: &Path,
        seed: u64,
        plan: &FaultPlanJson,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(CONTROL_TIMEOUT))
            .build()
            .into();
        let mut ingest = Self {
            exe: scenarios_exe.to_owned(),
            dir: dir.to_owned(),
            address: "127.0.0.1:0".to_owned(),
            child: None,
            starts: 0,
            agent,
        };
        ingest.spawn(seed, plan)?;
        Ok(ingest)
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many times the process was started (1 + restarts).
    #[must_use]
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Whether the process is alive (false after a crash or a kill).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILLs the process (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the process on the same port and data directory, with a new seed and plan.
    ///
    /// # Errors
    /// When it cannot start again within the bounded wait.
    pub fn restart(&mut self, seed: u64, plan: &FaultPlanJson) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match self.spawn(seed, plan) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!("fake-ingest restart failed, retrying: {error:#}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => return Err(error.context("restarting fake-ingest")),
            }
        }
    }

    fn spawn(&mut self, seed: u64, plan: &FaultPlanJson) -> anyhow::Result<()> {
        let plan_path = self.dir.join(format!("plan-{}.json", self.starts));
        std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan.0)?)
            .context("writing the fault plan")?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("fake-ingest.log"))
            .context("opening the fake-ingest log")?;
        let args: Vec<OsString> = vec![
            "--listen".into(),
            self.address.clone().into(),
            "--seed".into(),
            seed.to_string().into(),
            "--faults".into(),
            plan_path.into(),
            "--data-dir".into(),
            self.dir.join("data").into(),
        ];
        let mut child = fake_ingest_command(&self.exe, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawning fake-ingest")?;
        let stdout = child.stdout.take().context("fake-ingest stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = sender.send(line);
            }
            // Keep draining so the process never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match receiver.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "fake-ingest did not print its address within {STARTUP_TIMEOUT:?} (see {})",
                    self.log_path()
                );
            }
        };
        let Some(address) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("unexpected first line from fake-ingest: {line:?}");
        };
        self.address = address.to_owned();
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    fn log_path(&self) -> String {
        self.dir.join("fake-ingest.log").display().to_string()
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.url());
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .with_context(|| format!("reading {url}"))
    }

    /// `GET /_fake/stats`.
    ///
    /// # Errors
    /// When the server does not answer or the body does not parse.
    pub fn stats(&self) -> anyhow::Result<Stats> {
        let body = self.get("/_fake/stats")?;
        serde_json::from_str(&body).context("parsing /_fake/stats")
    }

    /// Every captured event, through `GET /_fake/events` page by page.
    ///
    /// # Errors
    /// When the server does not answer or a page does not parse.
    pub fn events(&self) -> anyhow::Result<Vec<CapturedEvent>> {
        let mut events = Vec::new();
        loop {
            let body = self.get(&format!(
                "/_fake/events?offset={}&limit={PAGE}",
                events.len()
            ))?;
            let page: fake_ingest::EventsPage =
                serde_json::from_str(&body).context("parsing /_fake/events")?;
            let count = page.events.len();
            events.extend(page.events);
            if count < PAGE {
                return Ok(events);
            }
        }
    }

    /// `PUT /_fake/faults`: replaces the fault plan at run time.
    ///
    /// # Errors
    /// When the server refuses the plan.
    pub fn set_faults(&self, plan: &FaultPlanJson) -> anyhow::Result<()> {
        let url = format!("{}/_fake/faults", self.url());
        self.agent
            .put(&url)
            .header("content-type", "application/json")
            .send(serde_json::to_string(&plan.0)?)
            .with_context(|| format!("PUT {url}"))?;
        Ok(())
    }

    /// Waits (bounded) until `GET /_fake/health` answers.
    ///
    /// # Errors
    /// When it does not answer within `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.get("/_fake/health") {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    return Err(error.context("fake-ingest is not healthy"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for FakeIngest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The key the verdict matches a stored event by: its `ledger_id` property, or for the session helpers' events
/// (which carry no app properties) `<event name>:<session_id>`.
#[must_use]
pub fn match_key(event: &CapturedEvent) -> Option<String> {
    let properties = &event.event.properties;
    if let Some(Value::String(id)) = properties.get(LEDGER_ID_PROPERTY) {
        return Some(id.clone());
    }
    match properties.get("session_id") {
        Some(Value::String(session)) => Some(format!("{}:{session}", event.event.name)),
        _ => None,
    }
}
