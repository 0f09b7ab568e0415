//! From a parsed document to a [`Plan`]: the operation's selection with fragments, aliases,
//! variables and `@skip`/`@include` resolved, checked against the [`Surface`].
//!
//! The planner accepts only documents it can prove valid: every field, argument, variable,
//! fragment and directive is checked the way GraphQL validation would check it, skipped branches
//! included. Anything it does not cover or cannot prove — another root field, introspection, an
//! unused fragment, a response key selected twice, a value of the wrong type — makes it answer
//! `None`, and the request goes to the executor, which gives the answer (or the error) it always
//! gave.

use std::collections::HashSet;

use async_graphql::{
    Name, Positioned, Variables,
    parser::types::{
        BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition,
        OperationType, Selection, SelectionSet, VariableDefinition,
    },
};
use async_graphql_value::{ConstValue, Value};
use uuid::Uuid;

use super::model::{ClassId, FilterField, ObjectField, RootField, Surface};
use crate::{
    access::{SortKey, Window},
    graphql::{
        classes::{self},
        ids,
    },
    registry::ColumnKind,
    rows::Cell,
};

mod inputs;

/// A response key, written once as the JSON bytes `"key":`.
pub type Key = Box<[u8]>;

fn key_of(field: &Field) -> Key {
    let name = field
        .alias
        .as_ref()
        .map_or(field.name.node.as_str(), |a| a.node.as_str());
    // GraphQL names are `[_A-Za-z][_0-9A-Za-z]*`: nothing to escape.
    format!("\"{name}\":").into_bytes().into_boxed_slice()
}

/// A planned read operation: its root fields in response order.
#[derive(Debug)]
pub struct Plan {
    pub roots: Vec<RootPlan>,
}

/// One root field.
#[derive(Debug)]
pub enum RootPlan {
    Typename(Key),
    List {
        key: Key,
        class: ClassId,
        args: ListArgs,
        connection: ConnectionPlan,
    },
    One {
        key: Key,
        class: ClassId,
        id: Uuid,
        object: ObjectPlan,
    },
}

/// A connection's arguments, checked.
#[derive(Debug)]
pub struct ListArgs {
    /// `first`, `last` and the key values of `after` and `before`.
    pub window: Window,
    /// Equality filters: (column, value).
    pub filter: Vec<(String, Cell)>,
    /// The order (`orderBy`, then id).
    pub key: SortKey,
    /// The index of each of the key's columns among the class's columns.
    pub key_columns: Vec<usize>,
}

/// The selection on a connection.
#[derive(Debug, Default)]
pub struct ConnectionPlan {
    pub items: Vec<ConnectionItem>,
}

impl ConnectionPlan {
    /// Whether the answer needs the number of rows before the page (`hasNextPage`,
    /// `hasPreviousPage`).
    pub fn needs_offset(&self) -> bool {
        self.items.iter().any(|item| match item {
            ConnectionItem::PageInfo(_, items) => items.iter().any(|i| {
                matches!(
                    i,
                    PageInfoItem::HasNextPage(_) | PageInfoItem::HasPreviousPage(_)
                )
            }),
            _ => false,
        })
    }

    /// Whether the answer needs the number of rows (`totalCount`, `hasNextPage`).
    pub fn needs_total(&self) -> bool {
        self.items.iter().any(|item| match item {
            ConnectionItem::TotalCount(_) => true,
            ConnectionItem::PageInfo(_, items) => items
                .iter()
                .any(|i| matches!(i, PageInfoItem::HasNextPage(_))),
            _ => false,
        })
    }

    /// The object selections that render the connection's rows (`nodes`, `edges.node`).
    pub fn objects(&self) -> impl Iterator<Item = &ObjectPlan> {
        self.items.iter().filter_map(|item| match item {
            ConnectionItem::Nodes(_, plan) => Some(plan),
            ConnectionItem::Edges(_, items) => items.iter().find_map(|i| match i {
                EdgeItem::Node(_, plan) => Some(plan),
                _ => None,
            }),
            _ => None,
        })
    }
}

#[derive(Debug)]
pub enum ConnectionItem {
    Typename(Key),
    TotalCount(Key),
    Nodes(Key, ObjectPlan),
    Edges(Key, Vec<EdgeItem>),
    PageInfo(Key, Vec<PageInfoItem>),
}

#[derive(Debug)]
pub enum EdgeItem {
    Typename(Key),
    Cursor(Key),
    Node(Key, ObjectPlan),
}

#[derive(Debug)]
pub enum PageInfoItem {
    Typename(Key),
    HasNextPage(Key),
    HasPreviousPage(Key),
    StartCursor(Key),
    EndCursor(Key),
}

/// The selection on one object of a class.
#[derive(Debug)]
pub struct ObjectPlan {
    pub class: ClassId,
    pub items: Vec<ObjectItem>,
}

#[derive(Debug)]
pub enum ObjectItem {
    Typename(Key),
    Id(Key),
    TenantId(Key),
    /// A column, by its index among the class's columns.
    Column(Key, usize, super::model::ColumnField),
    /// Rows of `child` whose column `fk` (an index among the child's columns) names this row,
    /// under the list's arguments.
    Children {
        key: Key,
        fk: usize,
        args: crate::access::NestedArgs,
        plan: Box<ObjectPlan>,
    },
    /// The row of `plan.class` that column `column` (an index) names.
    Reference {
        key: Key,
        column: usize,
        nullable: bool,
        plan: Box<ObjectPlan>,
    },
}

/// Plans the operation `operation_name` of `doc`, or `None` (the executor answers).
pub fn plan(
    surface: &Surface,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<Plan> {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => &op.node,
        (DocumentOperations::Multiple(ops), Some(name)) if ops.len() == 1 => &ops.get(name)?.node,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => &ops.values().next()?.node,
        _ => return None,
    };
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let mut planner = Planner {
        surface,
        doc,
        variables,
        definitions: &operation.variable_definitions,
        used_variables: HashSet::new(),
        used_fragments: HashSet::new(),
        chain: Vec::new(),
    };
    planner.check_definitions(operation)?;
    let roots = planner.roots(&operation.selection_set.node)?;
    // Validation refuses unused variables and fragments: leave those documents to it.
    let all_used = operation
        .variable_definitions
        .iter()
        .all(|d| planner.used_variables.contains(&d.node.name.node))
        && doc
            .fragments
            .keys()
            .all(|name| planner.used_fragments.contains(name));
    all_used.then_some(Plan { roots })
}

struct Planner<'a> {
    surface: &'a Surface,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    definitions: &'a [Positioned<VariableDefinition>],
    used_variables: HashSet<Name>,
    used_fragments: HashSet<Name>,
    chain: Vec<Name>,
}

/// A field as collected from a selection set: the field, whether it is included (directives),
/// and whether it was selected through a fragment on `Node` (only `id` and `__typename` then).
struct Collected<'a> {
    field: &'a Field,
    included: bool,
    node_only: bool,
}

impl<'a> Planner<'a> {
    /// Flattens a selection set on type `on` (`node` when it is a class's object type, where
    /// fragments on `Node` apply): fields in document order, fragments expanded.
    fn collect(
        &mut self,
        set: &'a SelectionSet,
        on: &str,
        node: bool,
        included: bool,
        node_only: bool,
        out: &mut Vec<Collected<'a>>,
    ) -> Option<()> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let inc = self.included(&field.node.directives)?;
                    out.push(Collected {
                        field: &field.node,
                        included: included && inc,
                        node_only,
                    });
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let inc = self.included(&spread.directives)?;
                    let name = &spread.fragment_name.node;
                    if self.chain.contains(name) || self.chain.len() >= 16 {
                        return None;
                    }
                    let fragment = &self.doc.fragments.get(name)?.node;
                    if !fragment.directives.is_empty() {
                        return None;
                    }
                    let only = applies(&fragment.type_condition.node.on.node, on, node)?;
                    self.used_fragments.insert(name.clone());
                    self.chain.push(name.clone());
                    self.collect(
                        &fragment.selection_set.node,
                        on,
                        node,
                        included && inc,
                        node_only || only,
                        out,
                    )?;
                    self.chain.pop();
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let inc = self.included(&inline.directives)?;
                    let only = match &inline.type_condition {
                        Some(cond) => applies(&cond.node.on.node, on, node)?,
                        None => false,
                    };
                    self.collect(
                        &inline.selection_set.node,
                        on,
                        node,
                        included && inc,
                        node_only || only,
                        out,
                    )?;
                }
            }
        }
        Some(())
    }

    fn collected(
        &mut self,
        set: &'a SelectionSet,
        on: &str,
        node: bool,
    ) -> Option<Vec<Collected<'a>>> {
        if set.items.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        self.collect(set, on, node, true, false, &mut out)?;
        merge_leaves(out)
    }

    fn roots(&mut self, set: &'a SelectionSet) -> Option<Vec<RootPlan>> {
        let mut roots = Vec::new();
        for c in self.collected(set, "Query", false)? {
            let field = c.field;
            let name = field.name.node.as_str();
            let plan = if name == "__typename" {
                leaf(field)?;
                RootPlan::Typename(key_of(field))
            } else {
                match *self.surface.roots.get(name)? {
                    RootField::List(class) => {
                        let args = self.list_args(field, class)?;
                        let connection = self.connection(field, class)?;
                        RootPlan::List {
                            key: key_of(field),
                            class,
                            args,
                            connection,
                        }
                    }
                    RootField::One(class) => {
                        let id = self.id_arg(field, class)?;
                        let object = self.object(&field.selection_set.node, class)?;
                        RootPlan::One {
                            key: key_of(field),
                            class,
                            id,
                            object,
                        }
                    }
                }
            };
            if c.included {
                roots.push(plan);
            }
        }
        nonempty(roots)
    }

    fn connection(&mut self, field: &'a Field, class: ClassId) -> Option<ConnectionPlan> {
        let model = &self.surface.classes[class];
        let mut plan = ConnectionPlan::default();
        let connection_name = model.connection.clone();
        for c in self.collected(&field.selection_set.node, &connection_name, false)? {
            let f = c.field;
            let key = key_of(f);
            let item = match f.name.node.as_str() {
                "__typename" => leaf(f).map(|()| ConnectionItem::Typename(key))?,
                "totalCount" => leaf(f).map(|()| ConnectionItem::TotalCount(key))?,
                "nodes" => {
                    no_args(f)?;
                    ConnectionItem::Nodes(key, self.object(&f.selection_set.node, class)?)
                }
                "edges" => {
                    no_args(f)?;
                    ConnectionItem::Edges(key, self.edges(f, class)?)
                }
                "pageInfo" => {
                    no_args(f)?;
                    ConnectionItem::PageInfo(key, self.page_info(f)?)
                }
                _ => return None,
            };
            if c.included {
                plan.items.push(item);
            }
        }
        plan.items = nonempty(plan.items)?;
        Some(plan)
    }

    fn edges(&mut self, field: &'a Field, class: ClassId) -> Option<Vec<EdgeItem>> {
        let edge_name = self.surface.classes[class].edge.clone();
        let mut items = Vec::new();
        for c in self.collected(&field.selection_set.node, &edge_name, false)? {
            let f = c.field;
            let key = key_of(f);
            let item = match f.name.node.as_str() {
                "__typename" => leaf(f).map(|()| EdgeItem::Typename(key))?,
                "cursor" => leaf(f).map(|()| EdgeItem::Cursor(key))?,
                "node" => {
                    no_args(f)?;
                    EdgeItem::Node(key, self.object(&f.selection_set.node, class)?)
                }
                _ => return None,
            };
            if c.included {
                items.push(item);
            }
        }
        nonempty(items)
    }

    fn page_info(&mut self, field: &'a Field) -> Option<Vec<PageInfoItem>> {
        let mut items = Vec::new();
        for c in self.collected(&field.selection_set.node, "PageInfo", false)? {
            let f = c.field;
            leaf(f)?;
            let key = key_of(f);
            let item = match f.name.node.as_str() {
                "__typename" => PageInfoItem::Typename(key),
                "hasNextPage" => PageInfoItem::HasNextPage(key),
                "hasPreviousPage" => PageInfoItem::HasPreviousPage(key),
                "startCursor" => PageInfoItem::StartCursor(key),
                "endCursor" => PageInfoItem::EndCursor(key),
                _ => return None,
            };
            if c.included {
                items.push(item);
            }
        }
        nonempty(items)
    }

    fn object(&mut self, set: &'a SelectionSet, class: ClassId) -> Option<ObjectPlan> {
        let surface = self.surface;
        let model = &surface.classes[class];
        let mut items = Vec::new();
        for c in self.collected(set, model.name, true)? {
            let f = c.field;
            let name = f.name.node.as_str();
            if c.node_only && !matches!(name, "id" | "__typename") {
                return None;
            }
            let key = key_of(f);
            let item = if name == "__typename" {
                leaf(f)?;
                ObjectItem::Typename(key)
            } else {
                match model.fields.get(name)? {
                    ObjectField::Id => leaf(f).map(|()| ObjectItem::Id(key))?,
                    ObjectField::TenantId => leaf(f).map(|()| ObjectItem::TenantId(key))?,
                    ObjectField::Column(column) => {
                        leaf(f)?;
                        let index = column_index(surface, class, &column.column)?;
                        ObjectItem::Column(key, index, column.clone())
                    }
                    ObjectField::Children { child, column } => {
                        let args = self.nested_args(f, *child)?;
                        let fk = column_index(surface, *child, column)?;
                        let plan = self.object(&f.selection_set.node, *child)?;
                        ObjectItem::Children {
                            key,
                            fk,
                            args,
                            plan: Box::new(plan),
                        }
                    }
                    ObjectField::Reference {
                        column,
                        target,
                        nullable,
                    } => {
                        no_args(f)?;
                        let column = column_index(surface, class, column)?;
                        let plan = self.object(&f.selection_set.node, *target)?;
                        ObjectItem::Reference {
                            key,
                            column,
                            nullable: *nullable,
                            plan: Box::new(plan),
                        }
                    }
                }
            };
            if c.included {
                items.push(item);
            }
        }
        Some(ObjectPlan {
            class,
            items: nonempty(items)?,
        })
    }
}

/// Merges a response key selected more than once, as the executor does, where that is simple:
/// the same leaf field without arguments (`id` beside `... on Node { id }`) answers once, at
/// the place of its first included occurrence. Any other repeated key goes to the executor.
fn merge_leaves(collected: Vec<Collected<'_>>) -> Option<Vec<Collected<'_>>> {
    fn key(f: &Field) -> &str {
        f.alias.as_ref().unwrap_or(&f.name).node.as_str()
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let repeated = collected.iter().any(|c| !seen.insert(key(c.field)));
    if !repeated {
        return Some(collected);
    }
    // Slots in answer order, and each key's slot: linear in the selection, however many times
    // a key repeats (a document may repeat `id` thousands of times within the cost limit).
    let mut slots: Vec<Option<Collected<'_>>> = Vec::with_capacity(collected.len());
    let mut slot_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let simple = |f: &Field| f.arguments.is_empty() && f.selection_set.node.items.is_empty();
    for c in collected {
        let Some(&slot) = slot_of.get(key(c.field)) else {
            slot_of.insert(key(c.field), slots.len());
            slots.push(Some(c));
            continue;
        };
        let first = slots[slot].as_ref()?;
        if first.field.name.node != c.field.name.node || !simple(first.field) || !simple(c.field) {
            return None;
        }
        if c.node_only && !matches!(c.field.name.node.as_str(), "id" | "__typename") {
            return None;
        }
        if !first.included && c.included {
            // The answer goes where the first included occurrence is.
            slots[slot] = None;
            slot_of.insert(key(c.field), slots.len());
            slots.push(Some(c));
        }
    }
    let out: Vec<Collected<'_>> = slots.into_iter().flatten().collect();
    Some(out)
}

/// A selection whose every field is skipped: the executor answers `null` where graphql-js
/// answers `{}`; the planner leaves that case to the executor, so both paths agree.
fn nonempty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// Whether a fragment on `condition` applies on type `on`: `Some(false)` for the type itself,
/// `Some(true)` for `Node` on a class's object (only `Node`'s fields then), `None` otherwise.
fn applies(condition: &str, on: &str, node: bool) -> Option<bool> {
    if condition == on {
        Some(false)
    } else if node && condition == "Node" {
        Some(true)
    } else {
        None
    }
}

fn column_index(surface: &Surface, class: ClassId, column: &str) -> Option<usize> {
    surface.classes[class]
        .class
        .columns
        .iter()
        .position(|c| c.name == column)
}

/// A leaf field: no arguments, no selection.
fn leaf(field: &Field) -> Option<()> {
    (field.arguments.is_empty() && field.selection_set.node.items.is_empty()).then_some(())
}

fn no_args(field: &Field) -> Option<()> {
    field.arguments.is_empty().then_some(())
}
