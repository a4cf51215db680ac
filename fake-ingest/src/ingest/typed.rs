//! The typed decode of a valid `POST /ingest` body: one pass over the bytes straight into [`IncomingEvent`]s,
//! without building a `serde_json::Value` tree of the body first.
//!
//! It owns the fast path only. It takes only bodies the reference decoder (`super::decode_batch_as_tree`) would
//! accept, and gives exactly the events that decoder would give; for any other body, and for the valid ones it
//! leaves (a field given twice, below), it gives `None`, and the reference decoder decodes the body again and
//! answers. So every answer to an invalid body (its status, its message, the index of the event) is the reference
//! decoder's by construction, and this module only has to be right about what it accepts:
//!
//! - The body and each event must be JSON objects (not arrays: serde's derived structs would take those), parsed by
//!   the same `serde_json` parser, so invalid JSON, trailing characters and nesting too deep are never accepted.
//! - `batch` must be a non-empty array; `uuid`, `event`, `distinct_id` and `timestamp` must be strings and
//!   `properties`, when present, an object. The values are then checked by the same functions, in the same order,
//!   as in the reference decoder.
//! - Any other field, of the body or of an event, is read into a `Value` and dropped, as the reference decoder
//!   reads it. Not skipped with `IgnoredAny`: `serde_json` skips a value without the checks it makes when reading
//!   one (UTF-8 and unpaired surrogates in strings, numbers out of range), so a skipped field could let a body
//!   through that the reference decoder rejects.
//! - A field that appears twice in the body or in an event is left to the reference decoder (which keeps the last).
//!   The properties are read into the same `Map` as the reference decoder's, with the same rule for a property
//!   that appears twice (the last one is kept).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{canonical_uuid_key, check_distinct_id, check_name, check_timestamp, checked_event};
use crate::event::IncomingEvent;

/// Decodes a body the reference decoder would accept into the same events; `None` for any other body.
pub(super) fn decode_valid_batch(bytes: &[u8]) -> Option<Vec<IncomingEvent>> {
    let Body(events) = serde_json::from_slice(bytes).ok()?;
    if events.is_empty() {
        return None;
    }
    Some(events)
}

/// The body's `batch`, decoded and checked.
struct Body(Vec<IncomingEvent>);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_map`, not `deserialize_struct`: `serde_json` takes only an object then.
        deserializer.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object with a \"batch\" array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut batch: Option<Batch> = None;
        while let Some(key) = map.next_key::<BodyField>()? {
            match key {
                BodyField::Batch if batch.is_some() => {
                    return Err(de::Error::duplicate_field("batch"));
                }
                BodyField::Batch => batch = Some(map.next_value()?),
                BodyField::Other => {
                    map.next_value::<Value>()?;
                }
            }
        }
        let Batch(events) = batch.ok_or_else(|| de::Error::missing_field("batch"))?;
        Ok(Body(events))
    }
}

/// A top-level field name.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum BodyField {
    Batch,
    #[serde(other)]
    Other,
}

/// The `batch` array: each event is checked as soon as it is read, so the array is read straight into the events,
/// and the first event that fails a check ends the decode.
struct Batch(Vec<IncomingEvent>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(BatchVisitor)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Batch;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Batch, A::Error> {
        let mut events = Vec::new();
        while let Some(event) = seq.next_element_seed(EventSeed)? {
            events.push(event);
        }
        Ok(Batch(events))
    }
}

/// A field name of an event.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum EventField {
    Uuid,
    Event,
    DistinctId,
    Timestamp,
    Properties,
    #[serde(other)]
    Other,
}

/// Reads one event of the batch and checks its values.
struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = IncomingEvent;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<IncomingEvent, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = IncomingEvent;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IncomingEvent, A::Error> {
        let mut uuid = None;
        let mut name = None;
        let mut distinct_id = None;
        let mut timestamp = None;
        let mut properties: Option<Map<String, Value>> = None;
        while let Some(key) = map.next_key::<EventField>()? {
            match key {
                EventField::Uuid => map.next_value_seed(Once(&mut uuid, "uuid"))?,
                EventField::Event => map.next_value_seed(Once(&mut name, "event"))?,
                EventField::DistinctId => {
                    map.next_value_seed(Once(&mut distinct_id, "distinct_id"))?;
                }
                EventField::Timestamp => map.next_value_seed(Once(&mut timestamp, "timestamp"))?,
                EventField::Properties => {
                    map.next_value_seed(Once(&mut properties, "properties"))?;
                }
                EventField::Other => {
                    map.next_value::<Value>()?;
                }
            }
        }
        let uuid: String = uuid.ok_or_else(|| de::Error::missing_field("uuid"))?;
        let name: String = name.ok_or_else(|| de::Error::missing_field("event"))?;
        let distinct_id: String =
            distinct_id.ok_or_else(|| de::Error::missing_field("distinct_id"))?;
        let timestamp: String = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        // The reference decoder's checks, in its order; the wording of a failure is the reference decoder's.
        let failed = |_| de::Error::custom("left to the reference decoder");
        let dedupe_key = canonical_uuid_key(uuid).map_err(failed)?;
        check_name(&name).map_err(failed)?;
        check_distinct_id(&distinct_id).map_err(failed)?;
        check_timestamp(&timestamp).map_err(failed)?;
        Ok(checked_event(
            dedupe_key,
            name,
            distinct_id,
            timestamp,
            properties.unwrap_or_default(),
        ))
    }
}

/// Reads a field's value into its slot, refusing a field seen before.
struct Once<'a, T>(&'a mut Option<T>, &'static str);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Once<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let Once(slot, name) = self;
        if slot.is_some() {
            return Err(de::Error::duplicate_field(name));
        }
        *slot = Some(T::deserialize(deserializer)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::decode_batch_as_tree;
    use super::*;

    const GOOD: &str = r#"{"uuid": "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "event": "e", "distinct_id": "d",
        "timestamp": "2026-11-23T10:55:10.123Z", "properties": {"a": 1}}"#;

    /// `GOOD` with `field` set to the JSON `value` (its other fields kept).
    fn good_with(field: &str, value: &str) -> String {
        let mut event: Map<String, Value> = serde_json::from_str(GOOD).expect("json");
        event.insert(field.to_owned(), serde_json::from_str(value).expect("json"));
        Value::Object(event).to_string()
    }

    /// `GOOD` without `field`.
    fn good_without(field: &str) -> String {
        let mut event: Map<String, Value> = serde_json::from_str(GOOD).expect("json");
        event.remove(field);
        Value::Object(event).to_string()
    }

    #[test]
    fn a_valid_body_decodes_to_the_events_the_reference_decoder_gives() {
        let bodies = [
            format!(r#"{{"batch": [{GOOD}]}}"#),
            format!(
                r#"{{"before": {{"x": [1, 2]}}, "batch": [{GOOD}, {}], "after": null}}"#,
                good_without("properties")
            ),
            format!(
                r#"{{"batch": [{}]}}"#,
                good_with("uuid", r#""01936F4E-8A2B-7C3D-9E4F-5A6B7C8D9E0F""#)
            ),
            format!(
                r#"{{"batch": [{}]}}"#,
                good_with("extra", r#"{"deep": [true, null]}"#)
            ),
            format!(
                r#"{{"batch": [{}]}}"#,
                good_with("event", r#""quoted \"é\" \u00e9 \ud83d\ude00""#)
            ),
            format!(
                r#"{{"batch": [{}]}}"#,
                good_with("timestamp", r#""2026-11-23T11:55:10+01:00""#)
            ),
            format!(
                r#"{{"batch": [{}]}}"#,
                good_with(
                    "properties",
                    r#"{"big": 18446744073709551615, "negative": -9007199254740993, "ratio": 0.1,
                        "nested": {"a": [1, null, true, "x"]}, "empty": {}, "escaped\n": "tab\t"}"#
                )
            ),
            // A property given twice: the last one is kept, by both decoders.
            format!(
                r#"{{"batch": [{}]}}"#,
                GOOD.replace(r#"{"a": 1}"#, r#"{"a": 1, "a": 2}"#)
            ),
            // A field name written with an escape is the same field.
            format!(
                r#"{{"batch": [{}]}}"#,
                GOOD.replace(r#""uuid""#, r#""uu\u0069d""#)
            ),
            format!("  \n{{\"batch\":[{GOOD}]}}\n  "),
        ];
        for body in bodies {
            let reference = decode_batch_as_tree(body.as_bytes()).expect("valid");
            let typed = decode_valid_batch(body.as_bytes()).expect("taken by the typed decode");
            assert_eq!(typed, reference, "{body}");
        }
    }

    #[test]
    fn every_invalid_body_is_left_to_the_reference_decoder_and_rejected_as_before() {
        let in_batch = |event: String| format!(r#"{{"batch": [{GOOD}, {event}]}}"#);
        let bodies = [
            String::new(),
            "{".to_owned(),
            "null".to_owned(),
            "[]".to_owned(),
            "{}".to_owned(),
            format!("[{{\"batch\": [{GOOD}]}}]"),
            format!("[[{GOOD}]]"),
            r#"{"batch": null}"#.to_owned(),
            r#"{"batch": {}}"#.to_owned(),
            r#"{"batch": []}"#.to_owned(),
            format!(r#"{{"batch": [{GOOD}]}} trailing"#),
            format!(r#"{{"batch": [{GOOD}],}}"#),
            in_batch("7".to_owned()),
            in_batch(
                r#"["01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "e", "d", "2026-11-23T10:55:10Z", {}]"#
                    .to_owned(),
            ),
            in_batch(good_without("uuid")),
            in_batch(good_without("event")),
            in_batch(good_without("distinct_id")),
            in_batch(good_without("timestamp")),
            in_batch(good_with("uuid", r#""not-a-uuid""#)),
            in_batch(good_with("uuid", r#""01936f4e8a2b7c3d9e4f5a6b7c8d9e0f""#)),
            in_batch(good_with("uuid", r#"{"bits": 1}"#)),
            in_batch(good_with("event", r#""""#)),
            in_batch(good_with("event", "null")),
            in_batch(good_with("distinct_id", "7")),
            in_batch(good_with("distinct_id", r#""""#)),
            in_batch(good_with("timestamp", r#""2026-11-23T10:55:10.123""#)),
            in_batch(good_with("timestamp", "1763895310")),
            in_batch(good_with("properties", "null")),
            in_batch(good_with("properties", "[]")),
            in_batch(good_with("properties", r#""a""#)),
            // A property that is not valid JSON, and one nested deeper than the parser goes.
            in_batch(GOOD.replace(r#"{"a": 1}"#, r#"{"a": tru}"#)),
            in_batch(GOOD.replace(r#"{"a": 1}"#, r#"{"a": 1e400}"#)),
            in_batch(GOOD.replace(
                r#"{"a": 1}"#,
                &format!(r#"{{"a": {}{}}}"#, "[".repeat(200), "]".repeat(200)),
            )),
            in_batch(GOOD.replace(r#""e""#, "\"\u{1}\"")),
            // Values in fields no decoder looks at are still read as JSON: numbers out of range, unpaired
            // surrogates and bytes that are not UTF-8 are rejected there too.
            format!(r#"{{"batch": [{GOOD}], "extra": 1e400}}"#),
            format!(r#"{{"extra": "\ud800", "batch": [{GOOD}]}}"#),
            in_batch(good_with("extra", "[1, 2]").replace("[1,2]", "[1, 1e400]")),
            in_batch(GOOD.replace(r#""event""#, r#""other": ["\udc00"], "event""#)),
        ];
        for body in bodies {
            assert_eq!(decode_valid_batch(body.as_bytes()), None, "{body}");
            let reference = decode_batch_as_tree(body.as_bytes()).expect_err("invalid");
            let answered = super::super::decode_batch(body.as_bytes()).expect_err("invalid");
            assert_eq!(answered, reference, "{body}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_in_a_field_no_decoder_looks_at_are_rejected_as_before() {
        let mut body = format!(r#"{{"extra": "~", "batch": [{GOOD}]}}"#).into_bytes();
        let tilde = body.iter().position(|&byte| byte == b'~').expect("a tilde");
        body[tilde] = 0xff;
        assert_eq!(decode_valid_batch(&body), None);
        let reference = decode_batch_as_tree(&body).expect_err("invalid");
        assert_eq!(super::super::decode_batch(&body), Err(reference));
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            Just(Value::from("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f")),
            Just(Value::from("2026-11-23T10:55:10Z")),
            Just(Value::from("")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// A body of one to three events, each `GOOD` with at most one field set to an arbitrary value or removed,
    /// maybe cut short.
    fn near_valid_bodies() -> impl Strategy<Value = Vec<u8>> {
        let fields = prop_oneof![
            Just("uuid"),
            Just("event"),
            Just("distinct_id"),
            Just("timestamp"),
            Just("properties"),
            Just("other"),
        ];
        let event = (fields, prop::option::of(any_json()), any::<bool>()).prop_map(
            |(field, value, changed)| match (changed, value) {
                (false, _) => GOOD.to_owned(),
                (true, Some(value)) => good_with(field, &value.to_string()),
                (true, None) => good_without(field),
            },
        );
        (
            prop::collection::vec(event, 1..4),
            any::<prop::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(|(events, cut, is_cut)| {
                let body = format!(r#"{{"batch": [{}]}}"#, events.join(", ")).into_bytes();
                let length = if is_cut {
                    cut.index(body.len())
                } else {
                    body.len()
                };
                body[..length].to_vec()
            })
    }

    proptest! {
        #[test]
        fn the_typed_decode_takes_exactly_the_bodies_the_reference_decoder_accepts(body in near_valid_bodies()) {
            // These bodies have no field given twice, so the two decoders must agree on every one.
            let reference = decode_batch_as_tree(&body).ok();
            prop_assert_eq!(decode_valid_batch(&body), reference);
        }
    }

    #[test]
    fn a_field_given_twice_is_left_to_the_reference_decoder_which_keeps_the_last() {
        let twice_in_event = GOOD.replace(r#""event": "e""#, r#""event": 5, "event": "e""#);
        let bodies = [
            format!(r#"{{"batch": [{twice_in_event}]}}"#),
            format!(r#"{{"batch": 5, "batch": [{GOOD}]}}"#),
        ];
        for body in bodies {
            assert_eq!(decode_valid_batch(body.as_bytes()), None, "{body}");
            let events = super::super::decode_batch(body.as_bytes()).expect("valid");
            assert_eq!(
                events,
                decode_batch_as_tree(body.as_bytes()).expect("valid")
            );
            assert_eq!(events[0].name, "e");
        }
    }
}
