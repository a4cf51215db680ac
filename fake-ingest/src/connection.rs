//! The per-connection handle that lets a handler reset its own TCP connection (RST, no response).
//!
//! The accept loop wraps every accepted socket in a [`ResettableStream`] and puts a [`ConnectionHandle`] into every
//! request's extensions. [`ConnectionHandle::reset`] marks the connection and wakes the connection task, which drops
//! the hyper connection: dropping the stream sets `SO_LINGER` to zero first, so the kernel closes the socket with a
//! RST instead of a FIN, and the in-flight request gets no response.
//!
//! Requests served without the accept loop (`app()` driven by `oneshot`) carry no handle; the front door then
//! answers a `503` instead.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// A handle on the connection a request arrived on.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    reset: AtomicBool,
    wake: Notify,
}

impl ConnectionHandle {
    /// Asks for the connection to be reset; the connection task does it.
    pub(crate) fn reset(&self) {
        self.shared.reset.store(true, Ordering::SeqCst);
        // `notify_one` keeps a permit if the connection task is not waiting yet.
        self.shared.wake.notify_one();
    }

    /// Completes once a reset was asked for.
    pub(crate) async fn reset_requested(&self) {
        while !self.shared.reset.load(Ordering::SeqCst) {
            self.shared.wake.notified().await;
        }
    }

    fn is_reset(&self) -> bool {
        self.shared.reset.load(Ordering::SeqCst)
    }
}

/// A TCP stream that closes with a RST when dropped after its connection was reset.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    inner: TcpStream,
    handle: ConnectionHandle,
}

impl ResettableStream {
    pub(crate) fn new(inner: TcpStream, handle: ConnectionHandle) -> Self {
        Self { inner, handle }
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.handle.is_reset()
            && let Err(error) = self.inner.set_zero_linger()
        {
            tracing::warn!(%error, "cannot set SO_LINGER 0; the connection closes with a FIN instead of a RST");
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
