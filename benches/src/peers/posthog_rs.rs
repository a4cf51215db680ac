//! posthog-rs, PostHog's own Rust SDK (blocking client): `capture` queues the event in memory for a background worker
//! that batches it to `POST {host}/batch/` and retries; `flush` waits until everything queued was attempted. Nothing
//! is on disk: a crash loses the queue, and a full queue drops new events.

use serde_json::Value;

use crate::sample::SampleEvent;

/// A posthog-rs client pointed at one host.
pub struct PostHogRsPeer {
    client: posthog_rs::Client,
}

impl std::fmt::Debug for PostHogRsPeer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PostHogRsPeer")
            .finish_non_exhaustive()
    }
}

/// Why the client could not be configured.
#[derive(Debug, thiserror::Error)]
#[error("posthog-rs refused its options")]
pub struct PeerSetupError(#[from] posthog_rs::ClientOptionsBuilderError);

impl PostHogRsPeer {
    /// A client for `host` sending batches of `batch` events (posthog-rs's `flush_at` and `max_batch_size`) from a
    /// queue of `max_queue` events (its bound: beyond it, new events are dropped).
    ///
    /// # Errors
    /// [`PeerSetupError`] if posthog-rs refuses the options.
    pub fn start(host: &str, batch: usize, max_queue: usize) -> Result<Self, PeerSetupError> {
        let options = posthog_rs::ClientOptionsBuilder::default()
            .api_key("phc_bench".to_owned())
            .host(host)
            .flush_at(batch)
            .max_batch_size(batch)
            .max_queue_size(max_queue)
            .request_timeout_seconds(10)
            .build()?;
        Ok(Self {
            client: posthog_rs::client(options),
        })
    }

    /// The sample event as a posthog-rs event (its UUID v7 is minted here, by `Event::new`).
    ///
    /// # Panics
    /// If posthog-rs refuses one of the sample's JSON properties (it accepts every JSON value).
    pub fn event(sample: &SampleEvent) -> posthog_rs::Event {
        let mut event = posthog_rs::Event::new(sample.name.clone(), sample.distinct_id.clone());
        for (key, value) in &sample.properties {
            event
                .insert_prop(key.clone(), Value::clone(value))
                .expect("a JSON value is a valid property");
        }
        event
    }

    /// Hands `event` to the client's queue.
    pub fn capture(&self, event: posthog_rs::Event) {
        self.client.capture(event);
    }

    /// Waits until everything captured so far was attempted.
    pub fn flush(&self) {
        self.client.flush();
    }

    /// Flushes and stops the worker.
    pub fn shutdown(self) {
        self.client.shutdown();
    }
}
