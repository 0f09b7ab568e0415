//! The collection the hand-written parts of the schema fill, one module after another
//! ([`crate::graphql::build_schema`] assembles them).

use async_graphql::dynamic::{Enum, Field, InputObject, Object, SubscriptionField};

/// The hand-written part of the schema.
pub struct Operations {
    pub objects: Vec<Object>,
    pub inputs: Vec<InputObject>,
    pub enums: Vec<Enum>,
    pub query_fields: Vec<Field>,
    pub mutation_fields: Vec<Field>,
    pub subscription_fields: Vec<SubscriptionField>,
    /// Fields added to objects of the generic surface, by type name (`Tenant.trialExpired`).
    pub object_fields: Vec<(&'static str, Field)>,
}
