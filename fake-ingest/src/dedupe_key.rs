//! [`DedupeKey`]: the compact, exact form the store keeps of every stored idempotency key, so that dedupe stays
//! exact after the events themselves are evicted (`--max-events-kept`) at a few dozen bytes per key.
//!
//! The keys fake-ingest sees are UUIDs (`/ingest`, PostHog), `log:`/`metric:` with 32 hex digits (a 128-bit hash)
//! and `span:<32 hex>:<16 hex>` (OTLP): each is kept as its bits, exactly. Any other key is kept as its text.

/// One stored idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum DedupeKey {
    /// A UUID, as its 128 bits.
    Uuid(u128),
    /// `log:<hash>`.
    Log(u128),
    /// `metric:<hash>`.
    Metric(u128),
    /// `span:<trace id>:<span id>`.
    Span(u128, u64),
    /// Anything else, as written.
    Other(Box<str>),
}

impl DedupeKey {
    pub(crate) fn new(key: &str) -> Self {
        let hex128 = |text: &str| {
            (text.len() == 32
                && text
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then(|| u128::from_str_radix(text, 16).ok())
            .flatten()
        };
        let compact = if let Some(hash) = key.strip_prefix("log:").and_then(hex128) {
            Some(DedupeKey::Log(hash))
        } else if let Some(hash) = key.strip_prefix("metric:").and_then(hex128) {
            Some(DedupeKey::Metric(hash))
        } else if let Some((trace, span)) = key
            .strip_prefix("span:")
            .and_then(|ids| ids.split_once(':'))
        {
            let span = (span.len() == 16
                && span
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then(|| u64::from_str_radix(span, 16).ok())
            .flatten();
            hex128(trace)
                .zip(span)
                .map(|(trace, span)| DedupeKey::Span(trace, span))
        } else {
            // Only the canonical form (lowercase, hyphenated) maps to bits, so that two keys differ as bits
            // exactly when they differ as text.
            uuid::Uuid::try_parse(key)
                .ok()
                .filter(|uuid| {
                    // Written into a buffer on the stack: this runs for every event of every batch.
                    let mut canonical = [0_u8; uuid::fmt::Hyphenated::LENGTH];
                    uuid.hyphenated().encode_lower(&mut canonical) == key
                })
                .map(|uuid| DedupeKey::Uuid(uuid.as_u128()))
        };
        compact.unwrap_or_else(|| DedupeKey::Other(key.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_key_forms_are_kept_as_bits_and_distinct_texts_stay_distinct() {
        let uuid = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f";
        assert!(matches!(DedupeKey::new(uuid), DedupeKey::Uuid(_)));
        let log = format!("log:{}", "ab".repeat(16));
        assert!(matches!(DedupeKey::new(&log), DedupeKey::Log(_)));
        let span = format!("span:{}:{}", "0f".repeat(16), "1e".repeat(8));
        assert!(matches!(DedupeKey::new(&span), DedupeKey::Span(..)));
        // Other spellings of the same bits are other keys, as their texts are.
        let upper = uuid.to_uppercase();
        assert!(matches!(DedupeKey::new(&upper), DedupeKey::Other(_)));
        assert_ne!(DedupeKey::new(&upper), DedupeKey::new(uuid));
        assert_ne!(
            DedupeKey::new(&log),
            DedupeKey::new(&log.replacen("log:", "metric:", 1))
        );
        assert!(matches!(DedupeKey::new("log:short"), DedupeKey::Other(_)));
        assert!(std::mem::size_of::<DedupeKey>() <= 32);
    }
}
