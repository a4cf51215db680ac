//! Request-body helpers shared by the protocol front doors (OTLP, PostHog): bounded gzip decompression and the
//! gzip magic-byte check.
//!
//! The size limit is checked on the decompressed bytes as they are produced, so a small compressed body that
//! expands past the limit (a "zip bomb") is refused after reading at most `limit + 1` decompressed bytes.

use std::io::Read;

/// The two bytes every gzip member starts with (RFC 1952, section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GunzipError {
    /// The body is not a valid gzip stream (the client should not retry the same bytes).
    #[error("invalid gzip body")]
    Invalid(#[source] std::io::Error),
    /// The decompressed body is larger than the limit (the client should send smaller batches).
    #[error("the decompressed body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Whether `body` starts with the gzip magic bytes.
pub(crate) fn has_gzip_magic(body: &[u8]) -> bool {
    body.starts_with(&GZIP_MAGIC)
}

/// Decompresses a gzip `body` (all members), refusing output larger than `limit` bytes.
///
/// # Errors
/// [`GunzipError::Invalid`] for a corrupt or truncated stream, [`GunzipError::TooLarge`] past the limit.
pub(crate) fn gunzip_limited(body: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let decoder = flate2::read::MultiGzDecoder::new(body);
    let read_at_most = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut decompressed = Vec::new();
    decoder
        .take(read_at_most)
        .read_to_end(&mut decompressed)
        .map_err(GunzipError::Invalid)?;
    if decompressed.len() > limit {
        return Err(GunzipError::TooLarge { limit });
    }
    Ok(decompressed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Gzips `bytes` (a test helper shared by the protocol modules' tests).
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(bytes)
            .expect("writing to a Vec cannot fail");
        encoder.finish().expect("writing to a Vec cannot fail")
    }

    #[test]
    fn a_gzip_body_round_trips_and_is_recognised_by_its_magic_bytes() {
        let compressed = gzip(b"hello");
        assert!(has_gzip_magic(&compressed));
        assert!(!has_gzip_magic(b"hello"));
        assert_eq!(
            gunzip_limited(&compressed, 5).expect("valid gzip"),
            b"hello"
        );
    }

    #[test]
    fn a_body_that_expands_past_the_limit_is_refused() {
        let compressed = gzip(&vec![b'a'; 10_000]);
        assert!(matches!(
            gunzip_limited(&compressed, 9_999),
            Err(GunzipError::TooLarge { limit: 9_999 })
        ));
    }

    #[test]
    fn a_corrupt_or_truncated_gzip_body_is_invalid() {
        let compressed = gzip(b"hello world");
        assert!(matches!(
            gunzip_limited(&compressed[..compressed.len() - 4], 100),
            Err(GunzipError::Invalid(_))
        ));
        assert!(matches!(
            gunzip_limited(b"\x1f\x8bnot gzip", 100),
            Err(GunzipError::Invalid(_))
        ));
    }
}
