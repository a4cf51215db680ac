//! The one list of injected-fault kinds. [`FaultKind`], the [`FaultCounts`] of `/_fake/stats` (one field per kind),
//! their names in `/metrics`, and the plain action names of a fault plan (`"hang"`, `"reset_after_store"`, ...) are
//! all generated from it, so a new kind is added in one place.

use serde::{Deserialize, Serialize};

use crate::faults::Action;

/// Generates [`FaultKind`] and [`FaultCounts`] from `Variant => field_name [as plain action]` lines.
macro_rules! fault_kinds {
    ($( $(#[doc = $kind_doc:literal])* $variant:ident => $field:ident $(as $action:expr)?, count: $count_doc:literal; )*) => {
        /// The kinds of injected fault, as counted in [`FaultCounts`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FaultKind {
            $( $(#[doc = $kind_doc])* $variant, )*
        }

        impl FaultKind {
            /// Every kind, in the order of [`FaultCounts`].
            pub const ALL: &'static [FaultKind] = &[$(FaultKind::$variant),*];

            /// The kind's name: its field in `/_fake/stats` `faults`, its `kind` label in `/metrics`, and, for a kind
            /// that is a plain action, the action's name in a fault plan.
            pub fn name(self) -> &'static str {
                match self {
                    $(FaultKind::$variant => stringify!($field),)*
                }
            }

            /// The action that is this kind, for the kinds that are a plain (parameterless) action.
            pub(crate) fn plain_action(self) -> Option<Action> {
                match self {
                    $(FaultKind::$variant => fault_kinds!(@action $($action)?),)*
                }
            }
        }

        /// Injected faults by kind.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct FaultCounts {
            $(
                #[doc = $count_doc]
                #[serde(default)]
                pub $field: u64,
            )*
        }

        impl FaultCounts {
            /// Counts one fault of `kind`.
            pub(crate) fn count(&mut self, kind: FaultKind) {
                match kind {
                    $(FaultKind::$variant => self.$field += 1,)*
                }
            }

            /// How many faults of `kind` were injected.
            pub fn get(&self, kind: FaultKind) -> u64 {
                match kind {
                    $(FaultKind::$variant => self.$field,)*
                }
            }
        }
    };
    (@action $action:expr) => { Some($action) };
    (@action) => { None };
}

fault_kinds! {
    /// A delay was applied.
    Latency => latency, count: "Requests delayed by a rule's `latency`.";
    /// An injected status was answered.
    Status => status, count: "Injected status responses.";
    /// The connection was reset before storing.
    ResetBeforeStore => reset_before_store as Action::ResetBeforeStore,
        count: "Connections reset before storing.";
    /// The connection was reset after storing.
    ResetAfterStore => reset_after_store as Action::ResetAfterStore,
        count: "Connections reset after storing.";
    /// The request was left unanswered.
    Hang => hang as Action::Hang, count: "Requests left unanswered.";
    /// The process crashed before storing.
    CrashBeforeStore => crash_before_store as Action::CrashBeforeStore,
        count: "Crashes before storing (seen only by an embedded server, or by the log line of the process that aborts).";
    /// The process crashed after storing.
    CrashAfterStore => crash_after_store as Action::CrashAfterStore, count: "Crashes after storing.";
    /// Every record of the request was rejected.
    Reject => reject as Action::Reject, count: "Requests whose records were all rejected by a `reject` rule.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_field_of_the_stats_with_its_name_and_counts_there() {
        let mut counts = FaultCounts::default();
        for (index, kind) in FaultKind::ALL.iter().enumerate() {
            for _ in 0..=index {
                counts.count(*kind);
            }
        }
        let shown = serde_json::to_value(&counts).expect("serializes");
        let fields = shown.as_object().expect("an object");
        assert_eq!(fields.len(), FaultKind::ALL.len());
        for (index, kind) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(fields[kind.name()], index as u64 + 1, "{kind:?}");
            assert_eq!(counts.get(*kind), index as u64 + 1);
        }
    }
}
