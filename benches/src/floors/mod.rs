//! The floors: the least work that could possibly do each job, measured in the same run as ours, so every figure of
//! ours is read as a ratio to what the machine allows.
//!
//! - [`channels`]: handing an event to another thread (the floor of `record()`).
//! - [`framed_file`]: serialize, frame and append to one file (the floor of the spool).
//! - [`post_loop`]: serialize and POST each batch with the same HTTP client (the floor of end-to-end delivery).
//! - [`sink_post_loop`]: the same with a sink's encoding (the floor of end-to-end delivery through that sink).
//! - [`bare_axum`]: an axum handler that only parses the JSON body (the floor of fake-ingest).

pub mod bare_axum;
pub mod channels;
pub mod framed_file;
pub mod post_loop;
pub mod sink_post_loop;
