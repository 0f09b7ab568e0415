//! The shape of an executed response, as the GraphQL spec (§6.4.4 "Handling Field Errors")
//! requires it and as Apollo and Relay rely on it:
//!
//! - a field whose resolver fails is `null` in `data`, and its error carries the field's `path`
//!   (response keys and list indices);
//! - when that field is non-null, the `null` propagates to the nearest nullable ancestor, and
//!   to `data` itself when every ancestor is non-null;
//! - every selected field keeps its key, in the order of the query.
//!
//! async-graphql resolves the root fields of a query concurrently and keeps their keys in the
//! order they finish; the record also notes the operation's root keys (from the parsed
//! document, so automatic persisted queries are covered) and [`FieldErrors::finish`] puts
//! `data`'s keys back in the query's order. Nested objects resolve their fields in order.
//!
//! async-graphql's dynamic schema does none of this by itself: a failing field is dropped from
//! its parent object and its error has no path. The [`Shape`] extension wraps every field and
//! list item: it gives an error its path, answers `null` for the failed field, and remembers the
//! non-null ones until a nullable ancestor absorbs them. The transports call
//! [`FieldErrors::finish`] on each response, which adds the errors and sets `data` to `null`
//! when a failure reached the root.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{
    Name, PathSegment, QueryPathNode, QueryPathSegment, Response, ServerError, ServerResult, Value,
    Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
    },
    indexmap::IndexMap,
    parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet},
};

/// The field errors of one request (or of one subscription event), shared between the
/// [`Shape`] extension and the transport that executes the request: put an
/// `Arc<FieldErrors>` in the request's data, and call [`FieldErrors::finish`] on the response.
#[derive(Default)]
pub struct FieldErrors {
    /// How many failures of non-null fields wait for a nullable ancestor (read on every object
    /// field, so kept outside the lock).
    pending: AtomicUsize,
    inner: Mutex<Inner>,
    /// The operation the request names (`operationName`), to find its root selection.
    operation: Option<String>,
    /// The response keys of the operation's root selection, in the query's order.
    root_keys: Mutex<Option<Vec<Name>>>,
}

#[derive(Default)]
struct Inner {
    errors: Vec<ServerError>,
    /// Paths of non-null fields that failed (or were nulled by a failure below them) and whose
    /// nearest nullable ancestor has not been reached yet.
    pending: Vec<Vec<PathSegment>>,
}

impl FieldErrors {
    /// A fresh record, to attach to one request, which names `operation` (its
    /// `operationName`, if any).
    pub fn new(operation: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            operation,
            ..Self::default()
        })
    }

    /// Notes the root keys of the operation that will run, from its parsed document.
    fn parsed(&self, doc: &ExecutableDocument) {
        let op = match (&doc.operations, self.operation.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
            (DocumentOperations::Multiple(_), None) => None,
        };
        let Some(op) = op else { return };
        let mut keys = Vec::new();
        let mut fragments = Vec::new();
        root_keys(doc, &op.node.selection_set.node, &mut keys, &mut fragments);
        *self.root_keys.lock().unwrap_or_else(|p| p.into_inner()) = Some(keys);
    }

    /// Completes `response`: appends the field errors collected during its execution, and sets
    /// `data` to `null` when a failure propagated to the root. Leaves the record empty, ready
    /// for the next event of a subscription.
    pub fn finish(&self, response: &mut Response) {
        if let Value::Object(map) = &mut response.data
            && let Some(keys) = &*self.root_keys.lock().unwrap_or_else(|p| p.into_inner())
        {
            in_order(map, keys);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.pending.is_empty() {
            response.data = Value::Null;
            inner.pending.clear();
            self.pending.store(0, Ordering::Release);
        }
        response.errors.append(&mut inner.errors);
    }

    fn failed(&self, error: ServerError, path: Vec<PathSegment>, nullable: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.errors.push(error);
        // A failure below this field has been made moot by this field's own failure.
        Self::take_below(&mut inner, &path);
        if !nullable {
            inner.pending.push(path);
        }
        self.pending.store(inner.pending.len(), Ordering::Release);
    }

    /// True when a non-null field below `path` failed: the field at `path` must then be `null`
    /// too (and, when it is non-null itself, propagate further up).
    fn absorb(&self, path: &[PathSegment], nullable: bool) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !Self::take_below(&mut inner, path) {
            return false;
        }
        if !nullable {
            inner.pending.push(path.to_vec());
        }
        self.pending.store(inner.pending.len(), Ordering::Release);
        true
    }

    /// Removes the pending failures strictly below `path`; true when there were any.
    fn take_below(inner: &mut Inner, path: &[PathSegment]) -> bool {
        let before = inner.pending.len();
        inner
            .pending
            .retain(|p| !(p.len() > path.len() && p.starts_with(path)));
        inner.pending.len() != before
    }
}

/// The response keys a selection set gives, in order, fragments expanded (each key once).
fn root_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut Vec<Name>,
    fragments: &mut Vec<&'a Name>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Selection::InlineFragment(fragment) => {
                root_keys(doc, &fragment.node.selection_set.node, keys, fragments)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                // A cycle is a validation error; it is not followed here.
                if fragments.contains(&name) {
                    continue;
                }
                if let Some(fragment) = doc.fragments.get(name) {
                    fragments.push(name);
                    root_keys(doc, &fragment.node.selection_set.node, keys, fragments);
                    fragments.pop();
                }
            }
        }
    }
}

/// Puts `map`'s keys in the order of `keys` (keys not listed keep their place at the end).
fn in_order(map: &mut IndexMap<Name, Value>, keys: &[Name]) {
    let ordered = map
        .keys()
        .zip(keys.iter().filter(|k| map.contains_key(*k)))
        .all(|(a, b)| a == b);
    if ordered {
        return;
    }
    let mut rest = std::mem::take(map);
    for key in keys {
        if let Some(value) = rest.shift_remove(key) {
            map.insert(key.clone(), value);
        }
    }
    map.extend(rest);
}

/// The path of a field or list item, from the root.
fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|n| match n.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_string()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        })
        .collect();
    path.reverse();
    path
}

/// The extension factory; register it before every other extension, so the others (the audit
/// log) still see a field's own error.
pub struct Shape;

impl ExtensionFactory for Shape {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ShapeExtension)
    }
}

struct ShapeExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ShapeExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(record) = ctx.data_opt::<Arc<FieldErrors>>() {
            record.parsed(&doc);
        }
        Ok(doc)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let nullable = !info.return_type.ends_with('!');
        // Only a field with a selection, or a list, can hold a failed field below it.
        let composite =
            !info.field.selection_set.node.items.is_empty() || info.return_type.starts_with('[');
        let node = info.path_node;
        let result = next.run(ctx, info).await;
        let record = match &result {
            Ok(_) if !composite => return result,
            _ => match ctx.data_opt::<Arc<FieldErrors>>() {
                Some(record) => record,
                None => return result,
            },
        };
        match result {
            Err(mut error) => {
                let path = path_of(node);
                if error.path.is_empty() {
                    error.path = path.clone();
                }
                record.failed(error, path, nullable);
                Ok(None)
            }
            Ok(value) => {
                if record.pending.load(Ordering::Acquire) > 0
                    && record.absorb(&path_of(node), nullable)
                {
                    return Ok(None);
                }
                Ok(value)
            }
        }
    }
}
