//! The row-class registry: every table, its plane, fork phase, natural key and references.
//!
//! Built from the entity definitions ([`entity::class::all`]); nothing here lists tables by hand.
//! The fork engine derives its plan from it, the GraphQL layer its types, the scoped data layer
//! its tenant conditions, and the isolation tests their matrix.

use std::{collections::HashMap, sync::Arc};

pub use entity::class::{
    ClassDesc as RowClass, ColumnDesc, ColumnKind, Fork, Plane, ReferenceDesc, Surface,
};

/// All row classes, with lookups.
#[derive(Clone, Debug)]
pub struct Registry {
    classes: Arc<Vec<RowClass>>,
    by_table: Arc<HashMap<String, usize>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::from_classes(entity::class::all())
    }
}

impl Registry {
    /// A registry over exactly these classes.
    pub fn from_classes(classes: Vec<RowClass>) -> Self {
        let by_table = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.table.clone(), i))
            .collect();
        Self {
            classes: Arc::new(classes),
            by_table: Arc::new(by_table),
        }
    }

    /// This registry plus one more class (a table created outside the entity crate, e.g. by a
    /// test or an extension). The fork engine picks it up with no change.
    pub fn with_class(&self, class: RowClass) -> Self {
        let mut classes = self.classes.as_ref().clone();
        classes.retain(|c| c.table != class.table);
        classes.push(class);
        Self::from_classes(classes)
    }

    /// Every class, in declaration order.
    pub fn classes(&self) -> &[RowClass] {
        &self.classes
    }

    /// The class stored in `table`.
    pub fn by_table(&self, table: &str) -> Option<&RowClass> {
        self.by_table.get(table).map(|i| &self.classes[*i])
    }

    /// The class whose GraphQL name is `name`.
    pub fn by_name(&self, name: &str) -> Option<&RowClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// The classes the fork copies in `phase`, parents before children (self references, such
    /// as the navigation tree, are handled row by row by the engine).
    pub fn fork_order(&self, phase: Fork) -> Vec<&RowClass> {
        let members: Vec<&RowClass> = self.classes.iter().filter(|c| c.fork == phase).collect();
        topological(&members)
    }

    /// Every class the fork copies, phase 1 then phase 2.
    pub fn copied_classes(&self) -> Vec<&RowClass> {
        let mut out = self.fork_order(Fork::Spine);
        out.extend(self.fork_order(Fork::TenantWide));
        out
    }

    /// Every tenant-owned class, parents before children by every reference (same-tenant or
    /// not: a fork event after its run). Deleting in the reverse order never waits on a
    /// foreign key (`offboarding::purge`); self references are left to their cascade.
    pub fn tenant_owned_order(&self) -> Vec<&RowClass> {
        let members: Vec<&RowClass> = self.classes.iter().filter(|c| c.tenant_owned).collect();
        topological(&members)
    }

    /// Every vocabulary class but the tenant catalog, parents before children: what a named
    /// tenant database receives a copy of ([`crate::placement::copy_vocabulary`]).
    pub fn vocabulary_order(&self) -> Vec<&RowClass> {
        let members: Vec<&RowClass> = self
            .classes
            .iter()
            .filter(|c| c.plane == Plane::Vocabulary && !c.tenant_owned && c.table != "tenants")
            .collect();
        topological(&members)
    }

    /// The classes that reference `table` (for nested fields and for cascade reasoning).
    pub fn referrers<'a>(
        &'a self,
        table: &'a str,
    ) -> impl Iterator<Item = (&'a RowClass, &'a ReferenceDesc)> + 'a {
        self.classes.iter().flat_map(move |c| {
            c.references
                .iter()
                .filter(move |r| r.table == table)
                .map(move |r| (c, r))
        })
    }
}

/// Orders `members` so that every class comes after the classes it references (within the set).
fn topological<'a>(members: &[&'a RowClass]) -> Vec<&'a RowClass> {
    let mut out: Vec<&RowClass> = Vec::with_capacity(members.len());
    let mut remaining: Vec<&RowClass> = members.to_vec();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut i = 0;
        while i < remaining.len() {
            let class = remaining[i];
            let waits = class.references.iter().any(|r| {
                r.table != class.table && remaining.iter().any(|other| other.table == r.table)
            });
            if waits {
                i += 1;
            } else {
                out.push(remaining.remove(i));
            }
        }
        if remaining.len() == before {
            // A reference cycle between classes: keep declaration order for the rest.
            out.append(&mut remaining);
        }
    }
    out
}
