//! The one walk over an export request's resources and scopes, shared by the three signals.
//!
//! Every OTLP export request has the same shape: resources, each with instrumentation scopes, each with records
//! (log records, spans or metrics). [`walk`] goes over it once, and for each scope builds an [`Origin`] that every
//! record of the scope shares: the resource attributes and the scope's `otel.scope.*` properties, each converted
//! once and held behind an `Arc`, and the dedupe-key hash state after the resource and the scope. The signal's
//! `visit` turns one record into events (or rejections).
//!
//! Invariant: the cost of a resource or a scope (converting it, encoding it, hashing it) is paid once per
//! occurrence in the request, never once per record, so decoding time and the memory of the events grow with the
//! size of the request, not with the product of a resource's size and its record count.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::{Map, Value};

use super::Decoded;
use super::key::KeyHasher;
use super::values::{attributes_map, insert_nonempty};
use crate::event::SharedProperties;

/// One resource of a request with its scopes, whatever the signal.
pub(super) struct ResourceGroup<R> {
    pub(super) resource: Option<Resource>,
    pub(super) scopes: Vec<ScopeGroup<R>>,
}

/// One instrumentation scope with its records.
pub(super) struct ScopeGroup<R> {
    pub(super) scope: Option<InstrumentationScope>,
    pub(super) records: Vec<R>,
}

/// What every record of one scope shares.
pub(super) struct Origin {
    resource_index: usize,
    scope_index: usize,
    /// The resource attributes, as JSON.
    pub(super) resource: Arc<Map<String, Value>>,
    /// The scope's properties (`otel.scope.name`, `otel.scope.version`).
    pub(super) scope: Arc<SharedProperties>,
    /// The dedupe-key hash after the resource and the scope (each hashed as its protobuf encoding).
    pub(super) key: KeyHasher,
}

impl Origin {
    /// Where record `record_index` of this scope sits in the request, for rejection messages.
    pub(super) fn at(&self, record_index: usize) -> String {
        format!(
            "resource {}, scope {}, record {record_index}",
            self.resource_index, self.scope_index
        )
    }
}

/// Walks every record of the request in order, calling `visit(origin, record index in its scope, record, out)`;
/// `request` (properties of the request itself) is the parent of every scope's properties.
pub(super) fn walk<R>(
    groups: impl IntoIterator<Item = ResourceGroup<R>>,
    request: Option<Arc<SharedProperties>>,
    mut visit: impl FnMut(&Origin, usize, R, &mut Decoded),
) -> Decoded {
    let mut decoded = Decoded::default();
    for (resource_index, group) in groups.into_iter().enumerate() {
        let resource = group.resource.unwrap_or_default();
        let mut resource_key = KeyHasher::new();
        resource_key.part(&resource.encode_to_vec());
        let resource_json = Arc::new(attributes_map(&resource.attributes));
        for (scope_index, scope_group) in group.scopes.into_iter().enumerate() {
            let scope = scope_group.scope.unwrap_or_default();
            let mut key = resource_key;
            key.part(&scope.encode_to_vec());
            let mut scope_properties = Map::new();
            insert_nonempty(&mut scope_properties, "otel.scope.name", &scope.name);
            insert_nonempty(&mut scope_properties, "otel.scope.version", &scope.version);
            let origin = Origin {
                resource_index,
                scope_index,
                resource: Arc::clone(&resource_json),
                scope: Arc::new(SharedProperties {
                    properties: scope_properties,
                    parent: request.clone(),
                }),
                key,
            };
            for (record_index, record) in scope_group.records.into_iter().enumerate() {
                visit(&origin, record_index, record, &mut decoded);
            }
        }
    }
    decoded
}
