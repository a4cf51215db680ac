//! A real `fake-ingest` process for the conformance and browser tests: started on free loopback ports (the main
//! listener and the OTLP listener), driven through its control API over HTTP, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::stdout_lines;

/// How long the process may take to print its listening lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `fake-ingest` binary.
pub(crate) struct SpawnedServer {
    child: Child,
    /// `http://127.0.0.1:PORT` of the main listener (every route).
    pub(crate) url: String,
    /// `http://127.0.0.1:PORT` of the `--otlp-listen` listener.
    pub(crate) otlp_url: String,
    agent: ureq::Agent,
}

impl SpawnedServer {
    /// Starts the binary with `--listen 127.0.0.1:0 --otlp-listen 127.0.0.1:0` and waits for both lines.
    pub(crate) fn start() -> SpawnedServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--otlp-listen",
                "127.0.0.1:0",
                "--seed",
                "7",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the fake-ingest binary starts");
        let lines = stdout_lines(&mut child);
        let mut url = None;
        let mut otlp_url = None;
        while url.is_none() || otlp_url.is_none() {
            let line = lines.recv_timeout(STARTUP_TIMEOUT).unwrap_or_else(|error| {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fake-ingest did not print its listening lines within {STARTUP_TIMEOUT:?}: {error}")
            });
            if let Some(address) = line.strip_prefix("otlp listening on ") {
                otlp_url = Some(address.trim().to_owned());
            } else if let Some(address) = line.strip_prefix("listening on ") {
                url = Some(address.trim().to_owned());
            }
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        SpawnedServer {
            child,
            url: url.expect("checked above"),
            otlp_url: otlp_url.expect("checked above"),
            agent,
        }
    }

    /// `GET` a control route, as JSON.
    pub(crate) fn get_json(&self, path: &str) -> Value {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .expect("the control API answers");
        assert_eq!(response.status(), 200, "GET {path}");
        let text = response.body_mut().read_to_string().expect("a text body");
        serde_json::from_str(&text).expect("a JSON body")
    }

    /// Replaces the fault plan.
    pub(crate) fn set_faults(&self, plan: &Value) {
        let mut response = self
            .agent
            .put(format!("{}/_fake/faults", self.url))
            .header("content-type", "application/json")
            .send(plan.to_string())
            .expect("the control API answers");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(response.status(), 200, "PUT /_fake/faults {plan}: {text}");
    }

    /// Forgets every event and counter.
    pub(crate) fn reset(&self) {
        let response = self
            .agent
            .post(format!("{}/_fake/reset", self.url))
            .send_empty()
            .expect("the control API answers");
        assert_eq!(response.status(), 200, "POST /_fake/reset");
    }

    /// The stats.
    pub(crate) fn stats(&self) -> Value {
        self.get_json("/_fake/stats")
    }

    /// Every captured event of one protocol (`otlp_logs`, `posthog`, ...).
    pub(crate) fn events(&self, protocol: &str) -> Vec<Value> {
        let page = self.get_json(&format!("/_fake/events?protocol={protocol}&limit=10000"));
        page["events"].as_array().cloned().unwrap_or_default()
    }

    /// Posts a raw body to a route of the main listener; returns the status and the body text.
    pub(crate) fn post(&self, path: &str, content_type: &str, body: &str) -> (u16, String) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .send(body)
            .expect("the server answers");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), text)
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
