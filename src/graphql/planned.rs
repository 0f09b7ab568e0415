//! The planned read path: read queries over the generated surface answered without the
//! general executor.
//!
//! A query whose every root field is a generated connection or single lookup, and whose
//! selections stay on the generated types (columns, ids, references, nested lists, connection
//! plumbing, `__typename`), is planned once ([`plan`]), fetched with one statement per level in
//! one transaction ([`fetch`]) and written straight to JSON bytes in query order ([`write`]).
//! Everything else — hand-written operations, mutations, subscriptions, introspection,
//! documents the planner cannot prove valid, and any request whose answer would carry an error —
//! goes to the executor, which answers exactly as it always did. The guard, the limits and the
//! transaction rules are the same for both: the planner runs after `scope::resolve` and
//! `limits::inspect`, applies `limits::check_budget` and the NUL refusal itself, and builds its
//! statements with `access::scoped_select`.

pub mod fetch;
pub mod model;
pub mod plan;
pub mod write;

use crate::{http::limits, scope::RequestContext, state::AppState, text};

/// The planner for one schema.
pub struct ReadPlanner {
    surface: model::Surface,
    introspection: bool,
}

impl ReadPlanner {
    /// The planner of `schema`, built from `registry`.
    pub fn new(
        registry: &crate::registry::Registry,
        schema: &async_graphql::registry::Registry,
        introspection: bool,
    ) -> ReadPlanner {
        ReadPlanner {
            surface: model::Surface::new(registry, schema),
            introspection,
        }
    }

    /// The response body for `request`, or `None` when the executor must answer it.
    pub async fn answer(
        &self,
        state: &AppState,
        ctx: &RequestContext,
        request: &mut async_graphql::Request,
    ) -> Option<Vec<u8>> {
        if request.extensions.contains_key("persistedQuery") || !request.uploads.is_empty() {
            return None;
        }
        if text::variables_nul(&request.variables).is_some() {
            return None;
        }
        let variables = request.variables.clone();
        let operation_name = request.operation_name.clone();
        let doc = request.parsed_query().ok()?;
        if limits::check_budget(doc, self.introspection).is_err()
            || text::document_nul(doc).is_some()
        {
            return None;
        }
        let plan = plan::plan(&self.surface, doc, operation_name.as_deref(), &variables)?;
        let data = match fetch::fetch(&state.scoped_db, ctx, &self.surface, &plan).await {
            Ok(data) => data,
            Err(err) => {
                tracing::debug!(error = ?err, "planned read failed; the executor answers");
                return None;
            }
        };
        write::response(&self.surface, &plan, &data)
    }
}
