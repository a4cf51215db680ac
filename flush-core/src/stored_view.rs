//! A stored record read in place: the canonical stored form (see `crate::event`) borrowed from the record's bytes,
//! for the built-in sinks to encode from without building a `serde_json::Value` tree per event.
//!
//! This module owns the one reading of a stored record that every built-in sink shares: the five fields of the
//! canonical form checked as [`decode_stored`](crate::event::decode_stored) checks them (a `uuid`, three strings,
//! an RFC 3339 `timestamp`, `properties` an object if present), strings borrowed unless they hold escapes, and each
//! property's value kept as its JSON text ([`RawValue`]) until a sink reads it: PostHog passes it through, the OTLP
//! sinks turn it into a typed attribute or the OpenTelemetry message it carries. The properties follow the rule of
//! the `Map` a [`DecodedEvent`](crate::sink::DecodedEvent) holds: ordered by key, each key once, a later one winning
//! ([`sort_by_key_last_wins`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::event::StoredFormError;

/// One stored event, its strings and property values borrowed from the record.
#[derive(Debug)]
pub(crate) struct StoredView<'a> {
    uuid: Uuid,
    name: Cow<'a, str>,
    distinct_id: Cow<'a, str>,
    timestamp_text: Cow<'a, str>,
    timestamp: jiff::Timestamp,
    /// Ordered by key, each key once.
    properties: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> StoredView<'a> {
    /// Reads `record`, which must be one event of the canonical stored form.
    ///
    /// # Errors
    /// [`StoredFormError`] when it is not one, for the same records as
    /// [`decode_stored`](crate::event::decode_stored).
    pub(crate) fn read(record: &'a [u8]) -> Result<Self, StoredFormError> {
        #[derive(serde::Deserialize)]
        struct Stored<'a> {
            uuid: Uuid,
            #[serde(borrow)]
            event: Cow<'a, str>,
            #[serde(borrow)]
            distinct_id: Cow<'a, str>,
            #[serde(borrow)]
            timestamp: Cow<'a, str>,
            #[serde(borrow, default)]
            properties: Properties<'a>,
        }
        let stored: Stored<'a> = serde_json::from_slice(record).map_err(StoredFormError::Json)?;
        let timestamp = stored
            .timestamp
            .parse::<jiff::Timestamp>()
            .map_err(|source| StoredFormError::Timestamp {
                text: stored.timestamp.clone().into_owned(),
                source,
            })?;
        Ok(Self {
            uuid: stored.uuid,
            name: stored.event,
            distinct_id: stored.distinct_id,
            timestamp_text: stored.timestamp,
            timestamp,
            properties: stored.properties.0,
        })
    }

    /// The idempotency key.
    pub(crate) fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The event name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The user or installation the event belongs to.
    pub(crate) fn distinct_id(&self) -> &str {
        &self.distinct_id
    }

    /// The event's time in RFC 3339, UTC, as stored.
    pub(crate) fn timestamp_rfc3339(&self) -> &str {
        &self.timestamp_text
    }

    /// The event's time in nanoseconds since the Unix epoch, `None` before 1970.
    pub(crate) fn unix_nanos(&self) -> Option<u64> {
        u64::try_from(self.timestamp.as_nanosecond()).ok()
    }

    /// The properties as JSON text, ordered by key, each key once (a later one won).
    pub(crate) fn properties(&self) -> &[(Cow<'a, str>, &'a RawValue)] {
        &self.properties
    }

    /// The JSON text of the property `key`, if the event has it.
    pub(crate) fn property(&self, key: &str) -> Option<&'a RawValue> {
        self.properties
            .binary_search_by(|(existing, _)| (**existing).cmp(key))
            .ok()
            .map(|index| self.properties[index].1)
    }
}

/// Orders `entries` by key and keeps each key once, with the value that came last: what a `serde_json::Map`
/// (without `preserve_order`) makes of an object, so that reading in place sends what decoding into a `Value` sent.
pub(crate) fn sort_by_key_last_wins<K: Ord, V>(entries: &mut Vec<(K, V)>) {
    // A stable sort keeps equal keys in their order; of each run, the last one's value is moved into the first.
    entries.sort_by(|(left, _), (right, _)| left.cmp(right));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
}

/// The `properties` object: keys borrowed where they hold no escapes, values as JSON text.
#[derive(Default)]
struct Properties<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Properties<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PropertiesVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for PropertiesVisitor<'a> {
            type Value = Properties<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object of properties")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((BorrowedText(key), value)) =
                    map.next_entry::<BorrowedText<'a>, &'a RawValue>()?
                {
                    entries.push((key, value));
                }
                sort_by_key_last_wins(&mut entries);
                Ok(Properties(entries))
            }
        }

        deserializer.deserialize_map(PropertiesVisitor(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the input unless it holds escapes.
pub(crate) struct BorrowedText<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = BorrowedText<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// The canonical stored record of `event`, as the spooler writes it (for tests of what reads it).
#[cfg(test)]
pub(crate) fn stored_record(event: crate::event::Event) -> Vec<u8> {
    let stamped = crate::event::StampedEvent::stamp(event);
    let mut record = Vec::new();
    stamped
        .serialize_into(stamped.key(), "install-1", &mut record)
        .expect("a test event serializes");
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_stored;

    const RECORD: &[u8] = br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"tool\ncall","distinct_id":"user-7","timestamp":"2026-11-23T10:55:10.123456789Z","properties":{"z":1,"a":[1,{"b":2}],"\u00e9":"x","z":"later","m":null}}"#;

    #[test]
    fn a_view_reads_what_decoding_reads() {
        let view = StoredView::read(RECORD).unwrap();
        let decoded = decode_stored(RECORD).unwrap();
        assert_eq!(view.uuid(), decoded.uuid);
        assert_eq!(view.name(), decoded.name);
        assert_eq!(view.distinct_id(), decoded.distinct_id);
        assert_eq!(view.timestamp_rfc3339(), decoded.timestamp_text);
        assert_eq!(
            view.unix_nanos(),
            u64::try_from(decoded.timestamp.as_nanosecond()).ok()
        );
        let keys: Vec<&str> = view.properties().iter().map(|(key, _)| &**key).collect();
        let decoded_keys: Vec<&str> = decoded.properties.keys().map(String::as_str).collect();
        assert_eq!(keys, decoded_keys, "the same keys in the same order");
        for (key, value) in view.properties() {
            let parsed: serde_json::Value = serde_json::from_str(value.get()).unwrap();
            assert_eq!(&parsed, &decoded.properties[&**key], "{key}");
        }
        assert_eq!(view.property("z").map(RawValue::get), Some(r#""later""#));
        assert!(view.property("absent").is_none());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let view = StoredView::read(RECORD).unwrap();
        assert!(matches!(view.distinct_id, Cow::Borrowed(_)));
        assert!(matches!(view.name, Cow::Owned(_)), "an escape is unescaped");
        assert_eq!(view.name(), "tool\ncall");
    }

    #[test]
    fn records_that_do_not_decode_are_not_read_either() {
        for record in [
            &b"not json"[..],
            br#"{"uuid":"x","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10Z"}"#,
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"yesterday"}"#,
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":1,"distinct_id":"d","timestamp":"2026-11-23T10:55:10Z"}"#,
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","timestamp":"2026-11-23T10:55:10Z"}"#,
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10Z","properties":[1]}"#,
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10Z","properties":null}"#,
        ] {
            assert!(decode_stored(record).is_err());
            assert!(
                StoredView::read(record).is_err(),
                "{}",
                String::from_utf8_lossy(record)
            );
        }
        let without_properties = br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10Z","extra":true}"#;
        assert!(decode_stored(without_properties).is_ok());
        assert!(
            StoredView::read(without_properties)
                .unwrap()
                .properties()
                .is_empty()
        );
    }

    #[test]
    fn the_last_value_of_a_key_wins_and_keys_are_ordered() {
        let mut entries = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("b", 5), ("a", 6)];
        sort_by_key_last_wins(&mut entries);
        assert_eq!(entries, [("a", 6), ("b", 5), ("c", 4)]);
    }
}
