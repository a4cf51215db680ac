//! The live page (`GET /`) in a real headless Chromium, driven over WebDriver (`fantoccini` + Debian's
//! `chromium-driver`): it loads, shows events posted through the API in its counters and table, expands an event's
//! properties, changes the fault plan so that the next request gets the fault, and resets after a confirmation.
//!
//! Without Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`, which `.ci/run` does) the
//! test fails with a message saying so: it never passes without a browser.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::spawned::SpawnedServer;
use crate::support::stdout_lines;

/// Where Debian's packages put the browser and its driver (`CHROMIUM` / `CHROMEDRIVER` override them).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The bound on every wait for the page to catch up (it polls once a second).
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &str) -> Driver {
        // Its own process group, so that dropping the driver also ends the browser processes it started.
        let mut child = Command::new(chromedriver)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {chromedriver}: {error}"));
        let lines = stdout_lines(&mut child);
        loop {
            let line = lines.recv_timeout(PAGE_TIMEOUT).unwrap_or_else(|error| {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not report its port within {PAGE_TIMEOUT:?}: {error}")
            });
            // "ChromeDriver was started successfully on port 44039."
            if let Some(rest) = line.split("successfully on port ").nth(1) {
                let port: u16 = rest
                    .trim_end_matches('.')
                    .trim()
                    .parse()
                    .expect("a port number");
                return Driver {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                };
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is the driver's pid (`process_group(0)`); `kill -- -PGID` ends the driver and its browsers.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and driver paths, or a panic that says how to install them.
fn browser_paths() -> (String, String) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.to_owned());
    for (what, path) in [("Chromium", &chromium), ("chromedriver", &chromedriver)] {
        assert!(
            Path::new(path).is_file(),
            "the page test needs a real headless browser, but {what} is not installed at {path}.\n\
             Install Debian's packages: apt-get install -y chromium chromium-driver (or set CHROMIUM / CHROMEDRIVER)."
        );
    }
    (chromium, chromedriver)
}

async fn connect(driver: &Driver, chromium: &str, profile: &Path, downloads: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000", format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|error| {
            panic!("cannot open a Chromium session through chromedriver: {error}")
        })
}

/// The text of the element with `id`.
async fn text_of(client: &Client, id: &str) -> String {
    match client.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (bounded) until the element with `id` has a text for which `accept` holds; returns that text.
async fn wait_for_text(
    client: &Client,
    id: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
    loop {
        let text = text_of(client, id).await;
        if accept(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "#{id} never showed {what} within {PAGE_TIMEOUT:?}; last text: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn posthog_batch(names: &[&str]) -> String {
    let events: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            json!({"event": name, "distinct_id": "browser-user", "uuid": format!("00000000-0000-4000-8000-00000000000{index}"),
                   "properties": {"plan": "pro", "index": index}})
        })
        .collect();
    json!({"api_key": "phc_browser", "batch": events}).to_string()
}

#[test]
fn the_page_shows_live_counters_and_events_and_changes_the_fault_plan() {
    let (chromium, chromedriver) = browser_paths();
    let server = SpawnedServer::start();
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let downloads = tempfile::tempdir().expect("a temporary download directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    runtime.block_on(async {
        let client = connect(&driver, &chromium, profile.path(), downloads.path()).await;
        drive_the_page(&client, &server).await;
        let _ = client.close().await;
    });
}

async fn drive_the_page(client: &Client, server: &SpawnedServer) {
    // Arrange: the page loads and reaches the control API.
    client
        .goto(&format!("{}/", server.url))
        .await
        .expect("the page loads");
    assert_eq!(client.title().await.expect("a title"), "fake-ingest");
    wait_for_text(client, "connection", "\"live\"", |text| text == "live").await;
    assert_eq!(text_of(client, "events-unique").await, "0");

    // Act: events arrive through two protocols.
    let (status, body) = server.post(
        "/batch/",
        "application/json",
        &posthog_batch(&["signed_up", "paid"]),
    );
    assert_eq!((status, body.as_str()), (200, r#"{"status":1}"#));
    let log = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1763895310123000000", "body": {"stringValue": "hello from otlp"}}]}]}]});
    assert_eq!(
        server
            .post("/v1/logs", "application/json", &log.to_string())
            .0,
        200
    );

    // Assert: the counters and the table catch up.
    wait_for_text(client, "events-unique", "3 unique events", |text| {
        text == "3"
    })
    .await;
    assert_eq!(text_of(client, "events-received").await, "3");
    assert_eq!(text_of(client, "requests").await, "2");

    // A request to a route that is not served shows in the table of unknown routes.
    let (status, _) = server.post("/i/v1/logz", "application/json", "{}");
    assert_eq!(status, 404);
    wait_for_text(client, "unknown-routes", "the unknown route", |text| {
        text.contains("POST /i/v1/logz") && text.contains('1')
    })
    .await;
    let table = wait_for_text(client, "events-body", "the three events", |text| {
        text.contains("signed_up") && text.contains("paid") && text.contains("hello from otlp")
    })
    .await;
    assert!(
        table.contains("posthog") && table.contains("otlp_logs"),
        "{table}"
    );

    // An event's properties expand on click.
    let row = client
        .find(Locator::Css("#events-body tr.event"))
        .await
        .expect("an event row");
    row.click().await.expect("the row is clickable");
    let details = wait_for_text(client, "events-body", "expanded properties", |text| {
        text.contains("\"properties\"")
    })
    .await;
    assert!(
        details.contains("service.name") || details.contains("\"plan\""),
        "{details}"
    );

    // Change the fault plan from the page: the next request gets a 503.
    let editor = client
        .find(Locator::Id("fault-json"))
        .await
        .expect("the plan editor");
    editor.clear().await.expect("the editor clears");
    let plan = json!({"rules": [{"when": {"protocol": "posthog"}, "then": {"status": 503, "retry_after_secs": 2}}]});
    editor
        .send_keys(&plan.to_string())
        .await
        .expect("the plan is typed");
    client
        .find(Locator::Id("apply-faults"))
        .await
        .expect("the apply button")
        .click()
        .await
        .expect("applied");
    wait_for_text(client, "fault-message", "the plan applied", |text| {
        text.starts_with("applied")
    })
    .await;
    assert_eq!(
        server.get_json("/_fake/faults"),
        plan,
        "the page sent the plan as typed"
    );

    let (status, body) = server.post("/batch/", "application/json", &posthog_batch(&["refused"]));
    assert_eq!(status, 503, "the next request gets the fault: {body}");
    wait_for_text(client, "fault-status", "one injected status", |text| {
        text.starts_with('1')
    })
    .await;

    // Reset asks first: cancelled, nothing is forgotten; confirmed, the counters and the table empty.
    let reset_button = client
        .find(Locator::Id("reset"))
        .await
        .expect("the reset button");
    reset_button.click().await.expect("clicked");
    client
        .dismiss_alert()
        .await
        .expect("a confirmation was asked");
    wait_for_text(client, "fault-message", "the cancellation", |text| {
        text == "reset cancelled"
    })
    .await;
    assert_eq!(server.stats()["events_unique"], 3, "nothing was reset");
    reset_button.click().await.expect("clicked");
    client
        .accept_alert()
        .await
        .expect("a confirmation was asked");
    wait_for_text(client, "events-unique", "0 after the reset", |text| {
        text == "0"
    })
    .await;
    wait_for_text(client, "events-body", "an empty table", |text| {
        text.contains("no events yet")
    })
    .await;
}
