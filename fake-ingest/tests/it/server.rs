//! The embeddable [`fake_ingest::Server`] handle, from async and sync code.

use fake_ingest::{Config, FaultPlan, Server};

use crate::support::{batch, client, fresh_uuid, get_json, post_ingest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_from_async_code_serves_on_a_free_loopback_port() {
    let server = Server::start(Config::default()).await.expect("starts");
    let url = server.url();

    let health: serde_json::Value =
        tokio::task::spawn_blocking(move || get_json(&url, "/_fake/health"))
            .await
            .expect("joined");

    assert!(server.addr().ip().is_loopback() && server.addr().port() != 0);
    assert_eq!(health, serde_json::json!({"status": "ok"}));
    server.shutdown();
}

#[test]
fn a_blocking_server_captures_events_and_its_faults_can_be_replaced() {
    let server = Server::start_blocking(Config::default()).expect("starts");
    let uuid = fresh_uuid();

    let stored = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect("answered");
    server.set_faults(
        FaultPlan::from_json(r#"{"rules": [{"then": {"status": 500}}]}"#).expect("plan"),
    );
    let refused =
        post_ingest(&client(), &server.url(), &batch(&[&fresh_uuid()])).expect("answered");

    assert_eq!((stored.status, refused.status), (202, 500));
    assert_eq!(server.events()[0].event.dedupe_key, uuid);
    assert_eq!(server.stats().requests, 2);
    assert_eq!(server.faults().rules.len(), 1);
}

#[test]
fn shutdown_returns_even_with_a_request_hanging() {
    let server = Server::start_blocking(Config {
        faults: FaultPlan::from_json(r#"{"rules": [{"then": "hang"}]}"#).expect("plan"),
        ..Config::default()
    })
    .expect("starts");
    let url = server.url();
    let hanging =
        std::thread::spawn(move || post_ingest(&client(), &url, &batch(&[&fresh_uuid()])));
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    while server.stats().faults.hang == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never reached the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    server.shutdown();

    assert!(
        hanging.join().expect("joined").is_err(),
        "the hung request is dropped at shutdown"
    );
}

#[test]
fn two_servers_cannot_share_a_data_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let _first = Server::start_blocking(config.clone()).expect("starts");

    let second = Server::start_blocking(config).expect_err("the directory is locked");

    assert!(
        matches!(second, fake_ingest::Error::DataDirLocked { .. }),
        "{second}"
    );
}

#[test]
fn the_handle_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}

    assert_send_sync::<Server>();
    assert_send_sync::<fake_ingest::Stats>();
    assert_send_sync::<fake_ingest::CapturedEvent>();
}
