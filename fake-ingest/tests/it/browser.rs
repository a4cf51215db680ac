//! The live page (`GET /`) in a real headless Chromium, driven over WebDriver (`fantoccini` + Debian's
//! `chromium-driver`): it loads, shows events posted through the API in its counters and table, expands an event's
//! properties, changes the fault plan so that the next request gets the fault, and resets after a confirmation.
//! A second session, at 1,400 and at 800 px wide, covers the request log linked to the events each request carried
//! (duplicates included), search, paging, the trace tree, nanosecond times, the "custom" plan label, the export
//! download, and that the dedupe keys and the preset selector stay inside their panels.
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

/// The two window widths the page must fit.
const WIDTHS: [u32; 2] = [1_400, 800];

/// What sticks out: the page scrolling sideways, a panel or table wider than its box, the preset selector or a
/// dedupe-key cell past its panel's edge.
const OVERFLOWS: &str = r##"
const problems = [];
const doc = document.documentElement;
if (doc.scrollWidth > window.innerWidth + 1) problems.push("the page scrolls sideways: " + doc.scrollWidth + " > " + window.innerWidth);
for (const box of document.querySelectorAll("section, .table-scroll")) {
  if (box.scrollWidth > box.clientWidth + 1) problems.push((box.id || box.className) + " overflows: " + box.scrollWidth + " > " + box.clientWidth);
}
const inside = (element, container) => {
  const r = element.getBoundingClientRect(), c = container.getBoundingClientRect();
  return r.left >= c.left - 1 && r.right <= c.right + 1;
};
const preset = document.getElementById("fault-preset");
if (!inside(preset, preset.closest("section"))) problems.push("the preset selector sticks out of its panel");
for (const cell of document.querySelectorAll("#events-body td.key")) {
  if (!inside(cell, cell.closest(".table-scroll"))) problems.push("a dedupe key sticks out: " + cell.textContent);
}
return problems;
"##;

#[test]
fn the_page_links_requests_to_events_searches_pages_draws_traces_exports_and_fits_two_widths() {
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
        drive_the_reader_features(&client, &server, downloads.path()).await;
        let _ = client.close().await;
    });
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css} is on the page: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("{css} is clickable: {error}"));
}

async fn drive_the_reader_features(client: &Client, server: &SpawnedServer, downloads: &Path) {
    // Arrange: two PostHog requests (the second resends the first event), an OTLP log whose time a double cannot
    // hold, and a trace of two spans, the child 5 ms long.
    assert_eq!(
        server
            .post(
                "/batch/",
                "application/json",
                &posthog_batch(&["signed_up", "paid"])
            )
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                "/batch/",
                "application/json",
                &posthog_batch(&["signed_up"])
            )
            .0,
        200
    );
    let log = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1763895310123456789", "body": {"stringValue": "precise time"}}]}]}]});
    assert_eq!(
        server
            .post("/v1/logs", "application/json", &log.to_string())
            .0,
        200
    );
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let spans = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": trace_id, "spanId": "00000000000000a1", "name": "GET /cart",
         "startTimeUnixNano": "1763895310000000000", "endTimeUnixNano": "1763895310012000000"},
        {"traceId": trace_id, "spanId": "00000000000000b2", "parentSpanId": "00000000000000a1", "name": "SELECT cart",
         "startTimeUnixNano": "1763895310001000000", "endTimeUnixNano": "1763895310006000000"}]}]}]});
    assert_eq!(
        server
            .post("/v1/traces", "application/json", &spans.to_string())
            .0,
        200
    );
    // A plan that is no preset.
    server.set_faults(&json!({"rules": [{"when": {"nth": 99}, "then": {"status": 500}}]}));

    client
        .goto(&format!("{}/", server.url))
        .await
        .expect("the page loads");
    wait_for_text(client, "connection", "\"live\"", |text| text == "live").await;
    wait_for_text(client, "events-unique", "5 unique events", |text| {
        text == "5"
    })
    .await;

    // The plan in force matches no preset: the selector says "custom", and names a preset once one is in force.
    let preset = client
        .find(Locator::Id("fault-preset"))
        .await
        .expect("the selector");
    let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
    while preset.prop("value").await.expect("a value").as_deref() != Some("custom") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the selector never showed custom"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.set_faults(
        &json!({"rules": [{"when": {"every": 3}, "then": {"status": 429, "retry_after_secs": 1}}]}),
    );
    while preset.prop("value").await.expect("a value").as_deref() != Some("every 3rd request 429") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the selector never named the preset in force"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.set_faults(&json!({"rules": []}));

    // Nanosecond times arrive exactly: the log's time, expanded, is the one sent.
    let table = wait_for_text(client, "events-body", "the log", |text| {
        text.contains("precise time")
    })
    .await;
    assert!(
        table.contains("1×"),
        "the resent event shows its resend: {table}"
    );
    click(client, "#events-body tr.event:nth-child(3)").await;
    wait_for_text(client, "events-body", "the exact nanoseconds", |text| {
        text.contains("\"1763895310123456789\"")
    })
    .await;

    // The trace tree: the child under its parent, each with its duration.
    let traces = wait_for_text(client, "traces", "the trace", |text| {
        text.contains("SELECT cart")
    })
    .await;
    assert!(
        traces.contains(trace_id) && traces.contains("2 spans"),
        "{traces}"
    );
    assert!(
        traces.contains("GET /cart") && traces.contains("12.000 ms") && traces.contains("5.000 ms"),
        "{traces}"
    );
    let nested = client
        .find(Locator::Css(
            "#traces li[data-span-id='00000000000000a1'] li[data-span-id='00000000000000b2']",
        ))
        .await;
    assert!(nested.is_ok(), "the child span is nested under its parent");

    // The request log: the second request resent event 1; clicking it shows the events it carried (none new).
    let requests = wait_for_text(client, "requests-body", "the request log", |text| {
        text.contains("/v1/traces") && text.contains("(seq 1)")
    })
    .await;
    assert!(
        requests.contains("/batch/") && requests.contains("/v1/logs"),
        "{requests}"
    );
    click(client, "#requests-body tr[data-index='1']").await;
    wait_for_text(client, "request-chip", "the request filter", |text| {
        text.starts_with("request 1")
    })
    .await;
    let of_first = wait_for_text(
        client,
        "events-body",
        "only the first request's events",
        |text| text.contains("signed_up") && !text.contains("precise time"),
    )
    .await;
    assert!(of_first.contains("paid"), "{of_first}");
    click(client, "#clear-request").await;
    wait_for_text(client, "events-body", "every event again", |text| {
        text.contains("precise time")
    })
    .await;

    // Search by name or property.
    let search = client
        .find(Locator::Id("event-search"))
        .await
        .expect("the search box");
    search.send_keys("PAID").await.expect("typed");
    wait_for_text(client, "events-body", "only the paid event", |text| {
        text.contains("paid") && !text.contains("signed_up") && !text.contains("precise time")
    })
    .await;
    search.clear().await.expect("cleared");
    search.send_keys("zzz-nowhere").await.expect("typed");
    wait_for_text(
        client,
        "events-total",
        "no event with that property",
        |text| text == "(0 matching)",
    )
    .await;
    search.clear().await.expect("cleared");
    search.send_keys("plan").await.expect("typed");
    wait_for_text(
        client,
        "events-total",
        "the two PostHog events (their property plan)",
        |text| text == "(2 matching)",
    )
    .await;
    search.clear().await.expect("cleared");
    // `clear` fires no input event: one keystroke and its deletion do.
    search.send_keys(" ").await.expect("typed");
    wait_for_text(client, "events-total", "every event", |text| {
        text == "(5 matching)"
    })
    .await;

    // Export: the download is every captured event, one a line.
    click(client, "#export-ndjson").await;
    let exported = wait_for_download(downloads, "fake-ingest-events.ndjson").await;
    assert_eq!(exported.lines().count(), 5, "{exported}");
    for line in exported.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("each line is an event");
        assert!(event["seq"].is_u64(), "{line}");
    }

    // Paging beyond the newest 50.
    let many: Vec<String> = (0..60).map(|index| format!("bulk_{index}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let bulk = json!({"api_key": "phc_browser", "batch": names.iter().enumerate().map(|(index, name)| json!({
        "event": name, "distinct_id": "browser-user", "uuid": format!("00000000-0000-4000-8000-1000000000{index:02}")
    })).collect::<Vec<_>>()});
    assert_eq!(
        server
            .post("/batch/", "application/json", &bulk.to_string())
            .0,
        200
    );
    wait_for_text(client, "events-range", "the newest page", |text| {
        text == "showing 16–65 of 65 (newest)"
    })
    .await;
    click(client, "#events-older").await;
    wait_for_text(client, "events-range", "the oldest page", |text| {
        text == "showing 1–50 of 65"
    })
    .await;
    wait_for_text(client, "events-body", "the first events", |text| {
        text.contains("signed_up")
    })
    .await;
    click(client, "#events-newest").await;
    wait_for_text(client, "events-range", "the newest page", |text| {
        text.ends_with("(newest)")
    })
    .await;

    // Nothing sticks out at either width.
    for width in WIDTHS {
        client
            .set_window_size(width, 900)
            .await
            .expect("the window resizes");
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            let problems = client
                .execute(OVERFLOWS, vec![])
                .await
                .expect("the check runs");
            let problems: Vec<String> =
                serde_json::from_value(problems).expect("a list of problems");
            let width_now = client
                .execute("return window.innerWidth;", vec![])
                .await
                .expect("the width");
            if problems.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "at {width} px (inner width {width_now}): {problems:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits (bounded) until the browser finished downloading `name` into `dir`; returns its text.
async fn wait_for_download(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
    loop {
        // Chromium writes `name.crdownload` and renames it when done.
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text;
        }
        let listing: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was not downloaded within {PAGE_TIMEOUT:?}; the directory holds {listing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
