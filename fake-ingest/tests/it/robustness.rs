//! No input makes the server panic or answer 5xx on its own (proptest over bodies and headers, through `oneshot`).

use fake_ingest::{Config, app};
use proptest::prelude::*;

use crate::support::{arbitrary_post, event_with, oneshot, runtime};

/// Bodies that are mostly near-valid JSON, so the deep checks are exercised, plus raw noise.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let json_value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    let field = proptest::sample::select(vec![
        "uuid",
        "event",
        "distinct_id",
        "timestamp",
        "properties",
        "batch",
    ]);
    let mutated = (
        proptest::collection::vec((field, json_value), 0..4),
        0usize..3,
    )
        .prop_map(|(edits, copies)| {
            let mut event = event_with(
                "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
                serde_json::json!({"k": 1}),
            );
            for (name, value) in edits {
                event[name] = value;
            }
            serde_json::json!({ "batch": vec![event; copies] })
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        mutated,
        proptest::collection::vec(any::<u8>(), 0..256),
        ".{0,64}".prop_map(String::into_bytes)
    ]
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_get_a_5xx_without_an_injected_fault(
        body in bodies(),
        content_type in prop_oneof![
            Just("application/json".to_owned()),
            Just("text/plain".to_owned()),
            ".{0,20}".prop_map(|s: String| s),
        ],
        encoding in prop_oneof![Just(""), Just("gzip"), Just("identity"), Just("deflate")],
    ) {
        let app = app(Config { max_body_bytes: 200, ..Config::default() }).expect("app");
        let request = arbitrary_post("/ingest", &content_type, encoding, body);

        let (status, _, answer) = runtime().block_on(oneshot(&app, request));

        prop_assert!(status.as_u16() < 500, "{status} {answer}");
        prop_assert!(status.as_u16() == 202 || answer.get("error").is_some(), "{status} {answer}");
    }
}
