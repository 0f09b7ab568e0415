//! The GraphQL schema: generated row-class types plus the hand-written operations
//! (tenant administration, forks, progress).

pub mod audit;
pub mod classes;
pub mod enums;
pub mod fleet;
pub mod ids;
pub mod loaders;
pub mod onboarding;
pub mod operations;
pub mod parts;
pub mod planned;
pub mod shape;
pub mod sheets;
pub mod tenancy;
pub mod upgrades;
pub mod users;

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Interface, InterfaceField, Object, Scalar, Schema,
    SchemaError, Subscription, TypeRef,
};

use crate::{registry::Registry, state::AppState};

/// Most ids one `nodes` call looks up (each is a lookup of its own).
pub const MAX_NODE_IDS: usize = 100;
/// Directive limit of a query. (Depth and complexity are measured by `limits::Budget`, which
/// keeps introspection apart.)
pub const MAX_DIRECTIVES: usize = 10;

/// The names of the root fields of `schema` (Query, Mutation and Subscription), read from its SDL.
pub fn root_fields(schema: &Schema) -> std::collections::HashSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let Ok(doc) = async_graphql::parser::parse_schema(schema.sdl()) else {
        return Default::default();
    };
    doc.definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(ty)
                if matches!(
                    ty.node.name.node.as_str(),
                    "Query" | "Mutation" | "Subscription"
                ) =>
            {
                match &ty.node.kind {
                    TypeKind::Object(object) => Some(
                        object
                            .fields
                            .iter()
                            .map(|f| f.node.name.node.to_string())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                }
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// The hand-written part of the schema, in a fixed order (the SDL lists fields in it).
fn hand_written() -> parts::Operations {
    let mut ops = parts::Operations {
        objects: Vec::new(),
        inputs: Vec::new(),
        enums: enums::build(),
        query_fields: Vec::new(),
        mutation_fields: Vec::new(),
        subscription_fields: Vec::new(),
        object_fields: Vec::new(),
    };
    operations::build(&mut ops);
    tenancy::build(&mut ops);
    onboarding::build(&mut ops);
    sheets::build(&mut ops);
    users::build(&mut ops);
    upgrades::build(&mut ops);
    fleet::build(&mut ops);
    audit::build(&mut ops);
    ops
}

/// Builds the schema. `state` is `None` only when exporting the SDL.
pub fn build_schema(
    registry: &Registry,
    introspection: bool,
    state: Option<Arc<AppState>>,
) -> Result<Schema, SchemaError> {
    let surface = classes::build(registry);
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut subscription = Subscription::new("Subscription");
    for field in surface.query_fields {
        query = query.field(field);
    }
    for field in surface.mutation_fields {
        mutation = mutation.field(field);
    }
    query = query
        .field(
            Field::new("node", TypeRef::named("Node"), |ctx| {
                FieldFuture::new(async move {
                    let state = classes::app(&ctx)?;
                    let req = classes::request(&ctx)?;
                    let id = ctx.args.try_get("id")?.string()?;
                    Ok(classes::load_node(state, req, id)
                        .await?
                        .map(|(row, name)| FieldValue::owned_any(row).with_type(name)))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .description("Any row by its global id; null when it is not visible to the caller."),
        )
        .field(
            Field::new("nodes", TypeRef::named_nn_list_nn("Node"), |ctx| {
                FieldFuture::new(async move {
                    let state = classes::app(&ctx)?;
                    let req = classes::request(&ctx)?;
                    let ids = ctx.args.try_get("ids")?.list()?;
                    if ids.len() > MAX_NODE_IDS {
                        return Err(crate::error::AppError::input(
                            "ids",
                            format!("at most {MAX_NODE_IDS} ids per call"),
                        )
                        .into());
                    }
                    let mut out = Vec::with_capacity(ids.len());
                    for id in ids.iter() {
                        let found = classes::load_node(state, req, id.string()?).await?;
                        if let Some((row, name)) = found {
                            out.push(FieldValue::owned_any(row).with_type(name));
                        }
                    }
                    Ok(Some(FieldValue::list(out)))
                })
            })
            .argument(InputValue::new(
                "ids",
                TypeRef::named_nn_list_nn(TypeRef::ID),
            ))
            .description(
                "Rows by global id (at most 100), in the order given; ids that are not visible \
                 to the caller (missing, or another tenant's) are left out.",
            ),
        );
    let ops = hand_written();
    for field in ops.query_fields {
        query = query.field(field);
    }
    for field in ops.mutation_fields {
        mutation = mutation.field(field);
    }
    for field in ops.subscription_fields {
        subscription = subscription.field(field);
    }

    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"))
        .register(
            Interface::new("Node")
                .description("An object with a global id.")
                .field(InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .register(Scalar::new("JSON").description("Any JSON value."))
        .register(Scalar::new("DateTime").description("An RFC 3339 date-time."))
        .register(query)
        .register(mutation)
        .register(subscription)
        .limit_directives(MAX_DIRECTIVES)
        // First, so it wraps the others: the audit log still sees a field's own error.
        .extension(shape::Shape)
        .extension(crate::http::limits::Budget { introspection })
        .extension(audit::Audit)
        .extension(crate::text::RefuseNul)
        // Automatic persisted queries: clients may send a query's SHA-256 instead of its text
        // once the server has seen it (per process; a miss answers PersistedQueryNotFound).
        .extension(
            async_graphql::extensions::apollo_persisted_queries::ApolloPersistedQueries::new(
                async_graphql::extensions::apollo_persisted_queries::LruCacheStorage::new(1024),
            ),
        )
        .enable_uploading();
    let mut extra = ops.object_fields;
    for mut object in surface.objects.into_iter().chain(ops.objects) {
        let (mine, rest): (Vec<_>, Vec<_>) = extra
            .into_iter()
            .partition(|(ty, _)| *ty == object.type_name());
        extra = rest;
        for (_, field) in mine {
            object = object.field(field);
        }
        builder = builder.register(object);
    }
    for input in surface.inputs.into_iter().chain(ops.inputs) {
        builder = builder.register(input);
    }
    for e in surface.enums.into_iter().chain(ops.enums) {
        builder = builder.register(e);
    }
    if !introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The SDL of the schema, with sorted fields: what `schema.graphql` holds.
pub fn sdl(registry: &Registry) -> Result<String, SchemaError> {
    let schema = build_schema(registry, true, None)?;
    Ok(schema.sdl_with_options(async_graphql::SDLExportOptions::new().sorted_fields()))
}
