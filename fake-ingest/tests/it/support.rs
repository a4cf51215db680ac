//! Shared helpers: request bodies, an HTTP client, `oneshot` calls and the spawned binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use fake_ingest::CapturedEvent;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The longest any test waits for something that should happen promptly (a process start or exit).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh idempotency key.
pub(crate) fn fresh_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One valid event with this uuid and properties.
pub(crate) fn event_with(uuid: &str, properties: Value) -> Value {
    json!({
        "uuid": uuid,
        "event": "cli_invocation",
        "distinct_id": "7d1c6a3e-1f0b-4c8e-9a51-3f2d4b6c8e90",
        "timestamp": "2026-11-23T10:55:10.123Z",
        "properties": properties,
    })
}

/// A `{"batch": [...]}` body of valid events with these uuids.
pub(crate) fn batch(uuids: &[&str]) -> String {
    let events: Vec<Value> = uuids
        .iter()
        .map(|uuid| event_with(uuid, json!({"command": "deploy"})))
        .collect();
    json!({ "batch": events }).to_string()
}

/// An HTTP client that returns 4xx/5xx as responses and gives up after `timeout`.
pub(crate) fn client_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_idle_connections(0)
        .build()
        .into()
}

/// An HTTP client with a generous timeout.
pub(crate) fn client() -> ureq::Agent {
    client_with_timeout(PATIENCE)
}

/// A response as (status, headers of interest, body).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

/// Posts a JSON body to `{base}/ingest`.
pub(crate) fn post_ingest(
    agent: &ureq::Agent,
    base: &str,
    body: &str,
) -> Result<Answer, ureq::Error> {
    let mut response = agent
        .post(format!("{base}/ingest"))
        .header("content-type", "application/json")
        .send(body)?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    Ok(Answer {
        status: response.status().as_u16(),
        retry_after,
        body: response.body_mut().read_to_string()?,
    })
}

/// GETs a JSON document.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> T {
    let mut response = client()
        .get(format!("{base}{path}"))
        .call()
        .expect("control API answers");
    assert_eq!(response.status(), 200, "GET {path}");
    serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
        .expect("JSON of the expected shape")
}

/// The dedupe keys of captured events, in order.
pub(crate) fn dedupe_keys(events: Vec<CapturedEvent>) -> Vec<String> {
    events
        .into_iter()
        .map(|captured| captured.event.dedupe_key)
        .collect()
}

/// Forwards a child's stdout, line by line, to the returned receiver (from a thread of its own), until the child
/// closes it or the receiver is dropped.
pub(crate) fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Whether an error is a connection reset (a TCP RST), as opposed to a clean close or a timeout.
pub(crate) fn is_connection_reset(error: &ureq::Error) -> bool {
    matches!(error, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset)
}

/// The routes PostHog clients post to (restated here, not taken from the server, so the tests pin them).
pub(crate) const POSTHOG_ROUTES: [&str; 8] = [
    "/batch",
    "/batch/",
    "/capture",
    "/capture/",
    "/e",
    "/e/",
    "/i/v0/e",
    "/i/v0/e/",
];

/// A single-threaded runtime to drive `oneshot` calls from synchronous tests.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Sends one request through a router without a socket; returns status, headers and the body's bytes.
pub(crate) async fn oneshot_bytes(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

/// Sends one request through a router without a socket; returns status, headers and the body as JSON (or a string).
pub(crate) async fn oneshot(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, bytes) = oneshot_bytes(app, request).await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, value)
}

/// A `POST /ingest` request with a JSON content type.
pub(crate) fn ingest_request(body: impl Into<Body>) -> Request<Body> {
    Request::post("/ingest")
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

/// A `POST` to `uri` with `body`, a `content-type` header if `content_type` is a valid header value, and a
/// `content-encoding` header unless `encoding` is empty: the arbitrary requests of the robustness properties.
pub(crate) fn arbitrary_post(
    uri: &str,
    content_type: &str,
    encoding: &str,
    body: Vec<u8>,
) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        request = request.header("content-type", value);
    }
    if !encoding.is_empty() {
        request = request.header("content-encoding", encoding);
    }
    request.body(Body::from(body)).expect("request")
}

/// A `GET` request.
pub(crate) fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

/// The `fake-ingest` binary, running; killed when dropped.
pub(crate) struct Binary {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Binary {
    /// Starts the binary on a free loopback port with these extra arguments and reads its startup line.
    pub(crate) fn start(args: &[&str]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(PATIENCE)
            .expect("a startup line within the patience");
        let url = line
            .trim_end()
            .strip_prefix("listening on ")
            .expect("the startup line format")
            .to_owned();
        Binary { child, url }
    }

    /// Starts the binary on a data directory.
    pub(crate) fn start_on(data_dir: &Path, args: &[&str]) -> Binary {
        let dir = data_dir.to_str().expect("UTF-8 temp path");
        let mut all = vec!["--data-dir", dir];
        all.extend_from_slice(args);
        Binary::start(&all)
    }

    /// Waits (bounded) for the process to exit on its own.
    pub(crate) fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The python of the virtualenv `.tools/<venv>` at the workspace root, in which `module` is importable: created
/// (`python3 -m venv`, then `pip install` of `requirements` from PyPI) when it is missing. Panics, saying what is
/// missing, without `python3` or PyPI: a conformance test never passes without its real client.
pub(crate) fn venv_python(venv: &str, requirements: &[&str], module: &str) -> PathBuf {
    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fake-ingest is in the workspace");
    let venv = workspace_root.join(".tools").join(venv);
    let python = venv.join("bin").join("python");
    let importable = |python: &Path| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if importable(&python) {
        return python;
    }
    let created = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .output();
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "cannot create the virtualenv {}: {}\n\
             The conformance tests with Python clients need python3 with venv (Debian: apt-get install python3-venv).",
            venv.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run python3 ({error}); the conformance tests with Python clients need python3 with venv"
        ),
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements)
        .output()
        .expect("pip runs");
    assert!(
        installed.status.success(),
        "cannot install {requirements:?} from PyPI into {}: {}",
        venv.display(),
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(
        importable(&python),
        "{module} is installed but cannot be imported by {}",
        python.display()
    );
    python
}
