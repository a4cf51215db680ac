//! Fault plans (the format of `docs/FAULTS.md`) and the deterministic per-request decision.
//!
//! A [`FaultPlan`] is an ordered list of [`Rule`]s; [`FaultPlan::decide`] returns the [`Decision`] of the first rule
//! whose [`When`] matches a request's [`FaultContext`]. Every front door calls it the same way, so a new route gets
//! fault injection by building a `FaultContext`.
//!
//! Invariant: a decision depends only on the seed, the request index, the rule index, the time since start and the
//! decoded batch. Each rule's randomness comes from its own generator seeded with a hash of
//! `(seed, request index, rule index)`: the first draw is the `probability` draw, the next ones the latency. So the
//! same seed and request sequence give the same decisions, whatever the connections or the thread scheduling.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{IncomingEvent, Protocol};
use crate::fault_kinds::FaultKind;

/// An ordered list of rules; the first rule whose `when` matches decides what happens to a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule: a trigger, an optional delay and an action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The conditions that must all hold (empty: always matches).
    #[serde(default, skip_serializing_if = "When::is_empty")]
    pub when: When,
    /// A delay before the action happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// What happens to the request (default: stored normally).
    #[serde(default, skip_serializing_if = "Action::is_store")]
    pub then: Action,
}

/// The trigger of a rule: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// A seeded draw in `[0, 1)` is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// The request index is at most this (the index among the requests to `route`, or of `protocol`, when the
    /// rule names one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// The request index (scoped as for `first`) is a multiple of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// The request index (scoped as for `first`) is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// The request index (scoped as for `first`) is greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// The time since start (or the last reset) is in `[a, b)` milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_ms: Option<[u64; 2]>,
    /// Some event in the batch has this property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_has_property: Option<PropertyMatch>,
    /// The request came to exactly this route, e.g. `/v1/logs` (`/batch` and `/batch/` are two routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The request came through this protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// A matcher on the batch: some event has property `name` (equal to `equals` when given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyMatch {
    /// The property name.
    pub name: String,
    /// The value it must equal; absent: the property only has to be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
}

/// A delay before the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Exactly this many milliseconds.
    FixedMs(u64),
    /// Uniform in `[a, b]` milliseconds.
    UniformMs([u64; 2]),
    /// Log-normal with this median and shape, capped: a long tail.
    Lognormal {
        /// The median delay in milliseconds.
        median_ms: f64,
        /// The shape (standard deviation of the underlying normal); 0 gives the median every time.
        sigma: f64,
        /// The largest delay in milliseconds.
        cap_ms: u64,
    },
}

/// What happens to a request a rule matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Action {
    /// Normal handling: stored, `202`.
    #[default]
    Store,
    /// Answer this 4xx/5xx status in the front door's error shape (`{"error": "injected fault"}` on `/ingest`);
    /// nothing stored.
    Status {
        /// The status code, 400..=599.
        status: u16,
        /// The `Retry-After` delay in seconds, when given.
        retry_after_secs: Option<u64>,
        /// Send `Retry-After` as an HTTP-date (that many seconds from now, rounded up to a whole second) instead of
        /// as seconds.
        retry_after_as_date: bool,
    },
    /// Reset the connection (TCP RST) without storing or answering.
    ResetBeforeStore,
    /// Store (and persist) the batch, then reset the connection without answering: a lost acknowledgement.
    ResetAfterStore,
    /// Read the request and never answer.
    Hang,
    /// Abort the process at once, storing nothing.
    CrashBeforeStore,
    /// Store and persist the batch, then abort the process at once.
    CrashAfterStore,
    /// Reject every record of the request, storing nothing: OTLP answers `200` with a partial success that
    /// counts them all; front doors without partial success answer `400`.
    Reject,
}

/// Everything a fault decision may depend on: built by each front door for each request.
#[derive(Debug, Clone, Copy)]
pub struct FaultContext<'a> {
    /// The 1-based index of this request among fault-evaluated requests since start or the last reset.
    pub request_index: u64,
    /// The 1-based index of this request among the fault-evaluated requests to its route (what a rule that names a
    /// `route` counts with `first`, `every`, `nth` and `after`).
    pub route_index: u64,
    /// The 1-based index of this request among the fault-evaluated requests of its protocol (what a rule that
    /// names a `protocol` but no `route` counts).
    pub protocol_index: u64,
    /// The route the request came to, e.g. `/ingest`.
    pub route: &'a str,
    /// The protocol of that route.
    pub protocol: Protocol,
    /// The time since start or the last reset.
    pub since_start: Duration,
    /// The decoded batch, or `None` when the request was invalid (then no `batch_has_property` matches).
    pub events: Option<&'a [IncomingEvent]>,
}

/// The outcome of [`FaultPlan::decide`] for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The index of the rule that matched, if any.
    pub rule: Option<usize>,
    /// The delay to apply before the action.
    pub latency: Option<Duration>,
    /// The action.
    pub action: Action,
}

impl Decision {
    /// Normal handling, no delay.
    pub fn store() -> Self {
        Self {
            rule: None,
            latency: None,
            action: Action::Store,
        }
    }
}

/// The most rules a plan may have.
pub const MAX_RULES: usize = 1_000;
/// The longest delay a rule may ask for, in milliseconds: a day.
pub const MAX_LATENCY_MS: u64 = 24 * 60 * 60 * 1000;
/// The largest `Retry-After` a rule may send, in seconds: a day.
pub const MAX_RETRY_AFTER_SECS: u64 = 24 * 60 * 60;
/// The largest shape of a log-normal latency (beyond it the cap is all that is ever drawn).
pub const MAX_LOGNORMAL_SIGMA: f64 = 10.0;
/// The longest `route` or `batch_has_property.name`, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a fault plan was rejected; the message says what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The text is not JSON of the plan format (serde's message gives line and column).
    #[error("not a fault plan")]
    Json(#[from] serde_json::Error),
    /// A part of the plan that must be a JSON object is something else (e.g. `[]` for the plan).
    #[error("{path} must be a JSON object, not {found}")]
    NotAnObject {
        /// Where: `the plan`, `rules[2]`, `rules[0].when`, ...
        path: String,
        /// What it is instead: `an array`, `a string`, ...
        found: &'static str,
    },
    /// The plan has more rules than [`MAX_RULES`].
    #[error("rules: {rules} rules is more than the {max} a plan may have")]
    TooManyRules {
        /// How many rules the plan has.
        rules: usize,
        /// The most allowed.
        max: usize,
    },
    /// A rule is well-formed JSON but its values are out of range.
    #[error("rules[{rule}]: {problem}")]
    Invalid {
        /// The 0-based index of the offending rule.
        rule: usize,
        /// What is wrong with it.
        problem: String,
    },
}

impl FaultPlan {
    /// The empty plan: every request is handled normally.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses and validates a plan in the `docs/FAULTS.md` format.
    ///
    /// ```
    /// let plan = fake_ingest::FaultPlan::from_json(r#"{"rules": [{"when": {"every": 7}, "then": "reset_before_store"}]}"#)?;
    /// assert_eq!(plan.rules.len(), 1);
    /// # Ok::<(), fake_ingest::PlanError>(())
    /// ```
    ///
    /// # Errors
    /// [`PlanError::Json`] for malformed JSON, unknown fields or actions; [`PlanError::Invalid`] for out-of-range
    /// values (a status outside 400..=599, a probability outside `[0, 1]`, a zero `every`, an empty range).
    pub fn from_json(text: &str) -> Result<Self, PlanError> {
        // Serde's derived decoders would read a JSON array as a struct written positionally (`[]` as an empty plan,
        // `[[rule]]` as a plan), so the shape is checked first; then the typed decode keeps serde's line and column.
        check_objects(&serde_json::from_str(text)?)?;
        let plan: FaultPlan = serde_json::from_str(text)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks the number of rules and every rule's values against the documented ranges (`docs/FAULTS.md`).
    ///
    /// # Errors
    /// [`PlanError::TooManyRules`] past [`MAX_RULES`]; [`PlanError::Invalid`] naming the first offending rule and
    /// field.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.rules.len() > MAX_RULES {
            return Err(PlanError::TooManyRules {
                rules: self.rules.len(),
                max: MAX_RULES,
            });
        }
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate().map_err(|problem| PlanError::Invalid {
                rule: index,
                problem,
            })?;
        }
        Ok(())
    }

    /// Decides what happens to one request: the first matching rule's delay and action, or normal handling.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fake_ingest::{Action, FaultContext, FaultPlan, Protocol};
    ///
    /// let plan = FaultPlan::from_json(r#"{"rules": [{"when": {"nth": 2}, "then": "hang"}]}"#)?;
    /// let context = |request_index| FaultContext {
    ///     request_index,
    ///     route_index: request_index,
    ///     protocol_index: request_index,
    ///     route: "/ingest",
    ///     protocol: Protocol::Ingest,
    ///     since_start: Duration::ZERO,
    ///     events: None,
    /// };
    /// assert_eq!(plan.decide(7, &context(1)).action, Action::Store);
    /// assert_eq!(plan.decide(7, &context(2)).action, Action::Hang);
    /// # Ok::<(), fake_ingest::PlanError>(())
    /// ```
    pub fn decide(&self, seed: u64, context: &FaultContext<'_>) -> Decision {
        for (index, rule) in self.rules.iter().enumerate() {
            let mut rng = fastrand::Rng::with_seed(mix(seed, context.request_index, index as u64));
            // Invariant: the probability draw is always the first draw, whether or not it is used.
            let draw = rng.f64();
            if rule.when.matches(draw, context) {
                return Decision {
                    rule: Some(index),
                    latency: rule
                        .latency
                        .as_ref()
                        .map(|latency| latency.sample(&mut rng)),
                    action: rule.then.clone(),
                };
            }
        }
        Decision::store()
    }
}

/// Checks that every part of a plan that is a struct is a JSON object: the plan, each rule, each rule's `when`,
/// `latency` and `batch_has_property`, and a log-normal latency's parameters.
fn check_objects(plan: &Value) -> Result<(), PlanError> {
    fn object(
        value: &Value,
        path: impl FnOnce() -> String,
    ) -> Result<&serde_json::Map<String, Value>, PlanError> {
        value.as_object().ok_or_else(|| PlanError::NotAnObject {
            path: path(),
            found: json_kind(value),
        })
    }
    let plan = object(plan, || "the plan".to_owned())?;
    let Some(Value::Array(rules)) = plan.get("rules") else {
        // An absent `rules` is the empty plan; any other type is serde's error to report.
        return Ok(());
    };
    for (index, rule) in rules.iter().enumerate() {
        let rule = object(rule, || format!("rules[{index}]"))?;
        if let Some(when) = rule.get("when") {
            let when = object(when, || format!("rules[{index}].when"))?;
            if let Some(matcher) = when.get("batch_has_property") {
                object(matcher, || {
                    format!("rules[{index}].when.batch_has_property")
                })?;
            }
        }
        if let Some(latency) = rule.get("latency") {
            let latency = object(latency, || format!("rules[{index}].latency"))?;
            if let Some(lognormal) = latency.get("lognormal") {
                object(lognormal, || format!("rules[{index}].latency.lognormal"))?;
            }
        }
    }
    Ok(())
}

/// What kind of JSON value this is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Rule {
    fn validate(&self) -> Result<(), String> {
        let when = &self.when;
        if let Some(p) = when.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("when.probability {p} is not in [0, 1]"));
        }
        for (name, value) in [("every", when.every), ("nth", when.nth)] {
            if value == Some(0) {
                return Err(format!("when.{name} must be at least 1"));
            }
        }
        if let Some([a, b]) = when.between_ms
            && a > b
        {
            return Err(format!("when.between_ms [{a}, {b}] is an empty window"));
        }
        if let Some(route) = &when.route
            && (!route.starts_with('/') || route.len() > MAX_NAME_BYTES)
        {
            return Err(format!(
                "when.route must start with / and be at most {MAX_NAME_BYTES} bytes"
            ));
        }
        if let Some(matcher) = &when.batch_has_property
            && (matcher.name.is_empty() || matcher.name.len() > MAX_NAME_BYTES)
        {
            return Err(format!(
                "when.batch_has_property.name must be 1 to {MAX_NAME_BYTES} bytes"
            ));
        }
        if let Some(latency) = &self.latency {
            latency.validate()?;
        }
        if let Action::Status {
            status,
            retry_after_secs,
            ..
        } = self.then
        {
            if !(400..=599).contains(&status) {
                return Err(format!("then.status {status} is not a 4xx or 5xx status"));
            }
            if let Some(secs) = retry_after_secs
                && secs > MAX_RETRY_AFTER_SECS
            {
                return Err(format!(
                    "then.retry_after_secs {secs} is more than a day ({MAX_RETRY_AFTER_SECS})"
                ));
            }
        }
        Ok(())
    }
}

impl Latency {
    fn validate(&self) -> Result<(), String> {
        let at_most_a_day = |field: &str, ms: u64| {
            if ms > MAX_LATENCY_MS {
                Err(format!(
                    "latency.{field} {ms} is more than a day ({MAX_LATENCY_MS} ms)"
                ))
            } else {
                Ok(())
            }
        };
        match *self {
            Latency::FixedMs(ms) => at_most_a_day("fixed_ms", ms),
            Latency::UniformMs([a, b]) => {
                if a > b {
                    return Err(format!("latency.uniform_ms [{a}, {b}] is an empty range"));
                }
                at_most_a_day("uniform_ms", b)
            }
            Latency::Lognormal {
                median_ms,
                sigma,
                cap_ms,
            } => {
                if !(median_ms.is_finite() && median_ms > 0.0) {
                    return Err(format!(
                        "latency.lognormal.median_ms {median_ms} must be > 0"
                    ));
                }
                if median_ms > MAX_LATENCY_MS as f64 {
                    return Err(format!(
                        "latency.lognormal.median_ms {median_ms} is more than a day ({MAX_LATENCY_MS} ms)"
                    ));
                }
                if !(0.0..=MAX_LOGNORMAL_SIGMA).contains(&sigma) {
                    return Err(format!(
                        "latency.lognormal.sigma {sigma} is not in [0, {MAX_LOGNORMAL_SIGMA}]"
                    ));
                }
                at_most_a_day("lognormal.cap_ms", cap_ms)
            }
        }
    }
}

impl When {
    fn is_empty(&self) -> bool {
        *self == When::default()
    }

    fn matches(&self, draw: f64, context: &FaultContext<'_>) -> bool {
        // Count triggers count the requests the rule is scoped to: its route's, else its protocol's, else all.
        let index = if self.route.is_some() {
            context.route_index
        } else if self.protocol.is_some() {
            context.protocol_index
        } else {
            context.request_index
        };
        let since_start_ms = u64::try_from(context.since_start.as_millis()).unwrap_or(u64::MAX);
        self.probability.is_none_or(|p| draw < p)
            && self.first.is_none_or(|n| index <= n)
            && self.every.is_none_or(|n| n != 0 && index.is_multiple_of(n))
            && self.nth.is_none_or(|n| index == n)
            && self.after.is_none_or(|n| index > n)
            && self
                .between_ms
                .is_none_or(|[a, b]| a <= since_start_ms && since_start_ms < b)
            && self
                .route
                .as_deref()
                .is_none_or(|route| route == context.route)
            && self
                .protocol
                .is_none_or(|protocol| protocol == context.protocol)
            && self.batch_has_property.as_ref().is_none_or(|matcher| {
                context
                    .events
                    .is_some_and(|events| events.iter().any(|event| matcher.matches(event)))
            })
    }
}

impl PropertyMatch {
    fn matches(&self, event: &IncomingEvent) -> bool {
        match (event.properties.get(&self.name), &self.equals) {
            (Some(value), Some(expected)) => value == expected,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

impl Latency {
    fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Latency::FixedMs(ms) => Duration::from_millis(ms),
            Latency::UniformMs([a, b]) => Duration::from_millis(rng.u64(a..=b.max(a))),
            Latency::Lognormal {
                median_ms,
                sigma,
                cap_ms,
            } => {
                // Box-Muller: a standard normal from two uniform draws (1 - f64() is in (0, 1], so ln is finite).
                let u1 = 1.0 - rng.f64();
                let u2 = rng.f64();
                let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let ms = (median_ms * (sigma * normal).exp()).clamp(0.0, cap_ms as f64);
                Duration::from_secs_f64(ms / 1000.0)
            }
        }
    }
}

impl Action {
    fn is_store(&self) -> bool {
        *self == Action::Store
    }

    /// The fault this action counts as, `None` for [`Action::Store`].
    pub fn kind(&self) -> Option<FaultKind> {
        match self {
            Action::Store => None,
            Action::Status { .. } => Some(FaultKind::Status),
            plain => FaultKind::ALL
                .iter()
                .copied()
                .find(|kind| kind.plain_action().as_ref() == Some(plain)),
        }
    }
}

/// Every action that has a plain name in a plan, with that name: `"store"` and the plain fault kinds.
fn named_actions() -> impl Iterator<Item = (&'static str, Action)> {
    std::iter::once(("store", Action::Store)).chain(
        FaultKind::ALL
            .iter()
            .filter_map(|kind| Some((kind.name(), kind.plain_action()?))),
    )
}

/// What an action may be, for messages.
fn actions_expected() -> String {
    let names: Vec<String> = named_actions()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    format!(
        "one of {} or {{\"status\": n, \"retry_after_secs\": s, \"retry_after_as_date\": b}}",
        names.join(", ")
    )
}

impl TryFrom<Value> for Action {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match value {
            Value::String(name) => named_actions()
                .find(|(known, _)| *known == name)
                .map(|(_, action)| action)
                .ok_or_else(|| {
                    format!("unknown action \"{name}\"; expected {}", actions_expected())
                }),
            Value::Object(fields) => {
                let mut status = None;
                let mut retry_after_secs = None;
                let mut retry_after_as_date = false;
                for (key, field) in fields {
                    if key == "retry_after_as_date" {
                        retry_after_as_date = field
                            .as_bool()
                            .ok_or("action field \"retry_after_as_date\" must be a boolean")?;
                        continue;
                    }
                    let number = field.as_u64();
                    match (key.as_str(), number) {
                        ("status", Some(n)) => {
                            status = Some(u16::try_from(n).map_err(|_| "status too large")?)
                        }
                        ("retry_after_secs", Some(n)) => retry_after_secs = Some(n),
                        ("status" | "retry_after_secs", None) => {
                            return Err(format!(
                                "action field \"{key}\" must be a non-negative integer"
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "unknown action field \"{key}\"; expected {}",
                                actions_expected()
                            ));
                        }
                    }
                }
                let status = status.ok_or_else(|| {
                    format!(
                        "action object without \"status\"; expected {}",
                        actions_expected()
                    )
                })?;
                Ok(Action::Status {
                    status,
                    retry_after_secs,
                    retry_after_as_date,
                })
            }
            other => Err(format!(
                "invalid action {other}; expected {}",
                actions_expected()
            )),
        }
    }
}

impl From<Action> for Value {
    fn from(action: Action) -> Value {
        if let Action::Status {
            status,
            retry_after_secs,
            retry_after_as_date,
        } = action
        {
            let mut fields = serde_json::Map::new();
            fields.insert("status".to_owned(), status.into());
            if let Some(secs) = retry_after_secs {
                fields.insert("retry_after_secs".to_owned(), secs.into());
            }
            if retry_after_as_date {
                fields.insert("retry_after_as_date".to_owned(), true.into());
            }
            return Value::Object(fields);
        }
        let name = named_actions()
            .find(|(_, known)| *known == action)
            .map_or("store", |(name, _)| name);
        Value::String(name.to_owned())
    }
}

/// A 64-bit hash of the three inputs (SplitMix64 finalizer chained), the seed of one rule's generator.
fn mix(seed: u64, request_index: u64, rule_index: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    splitmix(splitmix(splitmix(seed) ^ request_index) ^ rule_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(request_index: u64) -> FaultContext<'static> {
        FaultContext {
            request_index,
            route_index: request_index,
            protocol_index: request_index,
            route: "/ingest",
            protocol: Protocol::Ingest,
            since_start: Duration::ZERO,
            events: None,
        }
    }

    #[test]
    fn the_documented_example_plan_parses_and_round_trips() {
        let text = r#"{
          "rules": [
            { "when": { "between_ms": [0, 5000] }, "then": { "status": 503, "retry_after_secs": 1 } },
            { "when": { "batch_has_property": { "name": "poison", "equals": true } }, "then": { "status": 400 } },
            { "when": { "probability": 0.2 }, "then": "reset_after_store" },
            { "when": { "every": 7 }, "then": "reset_before_store" },
            { "when": { "nth": 3 }, "then": "hang" },
            { "when": { "after": 500, "probability": 0.01 }, "then": "crash_after_store" },
            { "latency": { "uniform_ms": [5, 50] } }
          ]
        }"#;
        let plan = FaultPlan::from_json(text).expect("the documented plan parses");
        assert_eq!(plan.rules.len(), 7);
        let again = FaultPlan::from_json(&serde_json::to_string(&plan).expect("serializes"))
            .expect("round trips");
        assert_eq!(again, plan);
    }

    #[test]
    fn out_of_range_values_name_the_rule() {
        let error = FaultPlan::from_json(r#"{"rules": [{}, {"then": {"status": 200}}]}"#)
            .expect_err("rejected");
        assert_eq!(
            error.to_string(),
            "rules[1]: then.status 200 is not a 4xx or 5xx status"
        );
    }

    #[test]
    fn unknown_actions_are_rejected_with_the_list_of_known_ones() {
        let error =
            FaultPlan::from_json(r#"{"rules": [{"then": "explode"}]}"#).expect_err("rejected");
        let PlanError::Json(source) = error else {
            panic!("expected a JSON error")
        };
        assert!(
            source.to_string().contains("unknown action \"explode\""),
            "{source}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions_and_another_seed_differs() {
        let plan = FaultPlan::from_json(
            r#"{"rules": [{"when": {"probability": 0.5}, "latency": {"lognormal": {"median_ms": 10, "sigma": 1, "cap_ms": 100}}, "then": "hang"}]}"#,
        )
        .expect("valid");
        let run = |seed| {
            (1..=200)
                .map(|i| plan.decide(seed, &context(i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let hangs = run(42).iter().filter(|d| d.action == Action::Hang).count();
        assert!(
            (60..140).contains(&hangs),
            "about half of 200 requests, got {hangs}"
        );
    }

    #[test]
    fn count_triggers_match_the_documented_indices() {
        let plan = |when: &str| {
            FaultPlan::from_json(&format!(
                r#"{{"rules": [{{"when": {when}, "then": "hang"}}]}}"#
            ))
        };
        let hits = |when: &str| {
            let plan = plan(when).expect("valid");
            (1..=10)
                .filter(|&i| plan.decide(0, &context(i)).action == Action::Hang)
                .collect::<Vec<u64>>()
        };
        assert_eq!(hits(r#"{"first": 2}"#), [1, 2]);
        assert_eq!(hits(r#"{"every": 4}"#), [4, 8]);
        assert_eq!(hits(r#"{"nth": 3}"#), [3]);
        assert_eq!(hits(r#"{"after": 8}"#), [9, 10]);
    }

    #[test]
    fn arrays_where_objects_are_expected_are_refused_naming_the_place() {
        for (text, message) in [
            ("[]", "the plan must be a JSON object, not an array"),
            (
                r#"[[{"then": "hang"}]]"#,
                "the plan must be a JSON object, not an array",
            ),
            (
                r#"{"rules": [[]]}"#,
                "rules[0] must be a JSON object, not an array",
            ),
            (
                r#"{"rules": [{"when": []}]}"#,
                "rules[0].when must be a JSON object, not an array",
            ),
            (
                r#"{"rules": [{}, {"latency": [5]}]}"#,
                "rules[1].latency must be a JSON object, not an array",
            ),
            (
                r#"{"rules": [{"when": {"batch_has_property": ["poison"]}}]}"#,
                "rules[0].when.batch_has_property must be a JSON object, not an array",
            ),
            (
                r#"{"rules": [{"latency": {"lognormal": [1, 1, 1]}}]}"#,
                "rules[0].latency.lognormal must be a JSON object, not an array",
            ),
            ("3", "the plan must be a JSON object, not a number"),
        ] {
            let error = FaultPlan::from_json(text).expect_err(text);
            assert_eq!(error.to_string(), message, "{text}");
        }
    }

    #[test]
    fn every_field_past_its_documented_range_is_refused_naming_the_field() {
        let day_ms = MAX_LATENCY_MS;
        for (rule, message) in [
            (
                format!(r#"{{"latency": {{"fixed_ms": {}}}}}"#, u64::MAX),
                format!(
                    "rules[0]: latency.fixed_ms {} is more than a day ({day_ms} ms)",
                    u64::MAX
                ),
            ),
            (
                format!(r#"{{"latency": {{"uniform_ms": [0, {}]}}}}"#, day_ms + 1),
                format!(
                    "rules[0]: latency.uniform_ms {} is more than a day ({day_ms} ms)",
                    day_ms + 1
                ),
            ),
            (
                r#"{"latency": {"lognormal": {"median_ms": 10, "sigma": 11, "cap_ms": 100}}}"#
                    .to_owned(),
                "rules[0]: latency.lognormal.sigma 11 is not in [0, 10]".to_owned(),
            ),
            (
                r#"{"latency": {"lognormal": {"median_ms": 0, "sigma": 1, "cap_ms": 100}}}"#
                    .to_owned(),
                "rules[0]: latency.lognormal.median_ms 0 must be > 0".to_owned(),
            ),
            (
                format!(
                    r#"{{"latency": {{"lognormal": {{"median_ms": 10, "sigma": 1, "cap_ms": {}}}}}}}"#,
                    u64::MAX
                ),
                format!(
                    "rules[0]: latency.lognormal.cap_ms {} is more than a day ({day_ms} ms)",
                    u64::MAX
                ),
            ),
            (
                format!(
                    r#"{{"then": {{"status": 503, "retry_after_secs": {}}}}}"#,
                    u64::MAX
                ),
                format!(
                    "rules[0]: then.retry_after_secs {} is more than a day (86400)",
                    u64::MAX
                ),
            ),
            (
                r#"{"when": {"route": "v1/logs"}}"#.to_owned(),
                "rules[0]: when.route must start with / and be at most 1024 bytes".to_owned(),
            ),
            (
                r#"{"when": {"batch_has_property": {"name": ""}}}"#.to_owned(),
                "rules[0]: when.batch_has_property.name must be 1 to 1024 bytes".to_owned(),
            ),
        ] {
            let text = format!(r#"{{"rules": [{rule}]}}"#);
            let error = FaultPlan::from_json(&text).expect_err(&text);
            assert_eq!(error.to_string(), message, "{text}");
        }
        let at_the_limits = format!(
            r#"{{"rules": [{{"latency": {{"fixed_ms": {day_ms}}}, "then": {{"status": 503, "retry_after_secs": 86400}}}}]}}"#
        );
        FaultPlan::from_json(&at_the_limits).expect("the limits themselves are allowed");
    }

    #[test]
    fn a_plan_may_have_at_most_a_thousand_rules() {
        let plan = |rules: usize| format!(r#"{{"rules": [{}]}}"#, vec!["{}"; rules].join(","));
        FaultPlan::from_json(&plan(MAX_RULES)).expect("the limit is allowed");
        let error = FaultPlan::from_json(&plan(MAX_RULES + 1)).expect_err("one too many");
        assert_eq!(
            error.to_string(),
            "rules: 1001 rules is more than the 1000 a plan may have"
        );
    }

    #[test]
    fn count_triggers_of_a_rule_that_names_a_route_or_protocol_count_only_those_requests() {
        let plan = FaultPlan::from_json(
            r#"{"rules": [
                {"when": {"route": "/batch/", "every": 3}, "then": "hang"},
                {"when": {"protocol": "otlp_traces", "first": 1}, "then": "reject"}
            ]}"#,
        )
        .expect("valid");
        // Mixed traffic: a /batch/ request, then an /ingest one, then an OTLP trace one, repeated.
        let mut route_counts = std::collections::HashMap::new();
        let mut decided = Vec::new();
        for request_index in 1..=12 {
            let (route, protocol) = match request_index % 3 {
                1 => ("/batch/", Protocol::Posthog),
                2 => ("/ingest", Protocol::Ingest),
                _ => ("/v1/traces", Protocol::OtlpTraces),
            };
            let count = route_counts.entry(route).or_insert(0);
            *count += 1;
            let context = FaultContext {
                request_index,
                route,
                protocol,
                route_index: *count,
                protocol_index: *count,
                since_start: Duration::ZERO,
                events: None,
            };
            decided.push((route, plan.decide(0, &context).action));
        }
        let hung: Vec<usize> = decided
            .iter()
            .enumerate()
            .filter(|(_, (_, action))| *action == Action::Hang)
            .map(|(position, _)| position + 1)
            .collect();
        assert_eq!(hung, [7], "the third /batch/ request is the 7th request");
        let rejected: Vec<usize> = decided
            .iter()
            .enumerate()
            .filter(|(_, (_, action))| *action == Action::Reject)
            .map(|(position, _)| position + 1)
            .collect();
        assert_eq!(rejected, [3], "the first trace request is the 3rd request");
    }
}
