//! The end-to-end floor of a sink: stamp and serialize each event into the spool's canonical record, let the sink
//! encode the batch (the very encoding flush-core sends), and POST it with [`PostLoop`]'s client.
//!
//! What it leaves out is what flush-core adds: the queue, the spool, acknowledgements, retries. So `ours ÷ this`
//! is the price of durability for that sink, with the encoding cost on both sides.

use flush_core::sink::{Batch, EncodeError, Sink, SinkError, Url};

use crate::floors::post_loop::{PostError, PostLoop};
use crate::sample::SampleEvent;

/// A blocking client posting batches encoded by one sink.
#[derive(Debug)]
pub struct SinkPostLoop {
    sink: Box<dyn Sink>,
    client: PostLoop,
    installation_id: String,
}

/// Why a sink's POST failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkPostError {
    /// The sink refused the endpoint.
    #[error("the sink refused the endpoint")]
    Endpoint(#[from] SinkError),
    /// The endpoint is not a URL.
    #[error("the endpoint is not a url")]
    Url(#[from] url::ParseError),
    /// The sink could not encode the batch.
    #[error("the sink could not encode the batch")]
    Encode(#[from] EncodeError),
    /// The request failed.
    #[error("the request failed")]
    Post(#[from] PostError),
}

impl SinkPostLoop {
    /// A client posting to the URL `sink` derives from `endpoint`, gzipping when `gzip`.
    ///
    /// # Errors
    /// [`SinkPostError`] when `endpoint` is not a URL or the sink refuses it.
    pub fn new(sink: Box<dyn Sink>, endpoint: &str, gzip: bool) -> Result<Self, SinkPostError> {
        let url = sink.url(&Url::parse(endpoint)?)?;
        Ok(Self {
            sink,
            client: PostLoop::to_url(url.to_string(), gzip),
            installation_id: "bench-installation".to_owned(),
        })
    }

    /// Stamps and serializes `events`, encodes them as one request with the sink, POSTs it and reads the answer.
    ///
    /// # Errors
    /// [`SinkPostError`] when encoding or the request fails, or the answer is not a 2xx.
    pub fn post(&self, events: &[SampleEvent]) -> Result<(), SinkPostError> {
        let records: Vec<Vec<u8>> = events
            .iter()
            .map(SampleEvent::stamp_and_serialize)
            .collect();
        let request = self
            .sink
            .encode(&Batch::new(&records, &self.installation_id))?;
        self.client
            .post_with(request.content_type(), request.headers(), request.body())?;
        Ok(())
    }
}
