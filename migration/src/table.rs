//! A small description language for tables, rendered by sea-query for either backend.
//!
//! Conventions every table gets without saying: an `id` UUID primary key. A tenant-owned table
//! (`tenant_owned`) also gets a unique `(tenant_id, id)` index — the target of composite foreign
//! keys, and the index on the tenant column — and each same-tenant reference becomes the
//! composite foreign key `(tenant_id, column) → table(tenant_id, id)`, so the database refuses a
//! row that points into another tenant.

use sea_orm_migration::prelude::*;

/// The storage type of a column.
#[derive(Copy, Clone, Debug)]
pub enum Kind {
    Uuid,
    Text,
    Int,
    Bool,
    Json,
    Timestamp,
    Bytes,
}

/// One column besides `id`.
#[derive(Copy, Clone, Debug)]
pub struct Col {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// Unique across the whole table (not only within a tenant).
    pub unique: bool,
}

/// One reference to `table.id`.
#[derive(Copy, Clone, Debug)]
pub struct Fk {
    pub column: &'static str,
    pub table: &'static str,
    /// Composite `(tenant_id, column)` reference into the same tenant.
    pub same_tenant: bool,
}

/// One table.
#[derive(Copy, Clone, Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [Col],
    pub foreign_keys: &'static [Fk],
    pub tenant_owned: bool,
    /// Unique within the owner (prefixed with `tenant_id` for tenant-owned tables).
    pub natural_key: &'static [&'static str],
}

impl TableSpec {
    /// The `CREATE TABLE` statement, foreign keys inline (SQLite cannot add them later).
    pub fn create(&self) -> TableCreateStatement {
        let mut table = Table::create();
        table
            .table(self.name)
            .col(ColumnDef::new("id").uuid().not_null().primary_key());
        for col in self.columns {
            let mut def = ColumnDef::new(col.name);
            match col.kind {
                Kind::Uuid => def.uuid(),
                Kind::Text => def.text(),
                Kind::Int => def.integer(),
                Kind::Bool => def.boolean(),
                Kind::Json => def.json_binary(),
                Kind::Timestamp => def.timestamp_with_time_zone(),
                Kind::Bytes => def.blob(),
            };
            if col.nullable {
                def.null();
            } else {
                def.not_null();
            }
            table.col(def);
        }
        for fk in self.foreign_keys {
            let mut key = ForeignKey::create();
            key.name(format!("fk_{}_{}", self.name, fk.column))
                .from_tbl(self.name)
                .to_tbl(fk.table);
            if fk.same_tenant {
                key.from_col("tenant_id")
                    .from_col(fk.column)
                    .to_col("tenant_id")
                    .to_col("id")
                    .on_delete(ForeignKeyAction::Cascade);
            } else {
                let action = if matches!(fk.table, "tenants" | "users") {
                    ForeignKeyAction::Cascade
                } else {
                    // Vocabulary that configuration still points at cannot be deleted.
                    ForeignKeyAction::Restrict
                };
                key.from_col(fk.column).to_col("id").on_delete(action);
            }
            table.foreign_key(&mut key);
        }
        if self.has_required_owner() {
            // The target of composite same-tenant foreign keys, also the tenant column's index.
            table.index(
                Index::create()
                    .name(format!("ux_{}_tenant_id_id", self.name))
                    .unique()
                    .col("tenant_id")
                    .col("id"),
            );
        }
        table.to_owned()
    }

    /// The other indexes: the natural key, single unique columns, and the tenant column where
    /// no unique index starts with it. (`(tenant_id, id)` is a constraint of the table itself,
    /// see [`TableSpec::create`], so self references such as a tree can point at it.)
    pub fn indexes(&self) -> Vec<IndexCreateStatement> {
        let mut out = Vec::new();
        let owner: &[&'static str] = if self.tenant_owned {
            &["tenant_id"]
        } else {
            &[]
        };
        let unique = |name: String, cols: &[&'static str]| {
            let mut index = Index::create();
            index.name(name).table(self.name).unique();
            for col in cols {
                index.col(*col);
            }
            index.to_owned()
        };
        if self.tenant_owned && !self.has_required_owner() {
            let mut index = Index::create();
            index
                .name(format!("ix_{}_tenant_id", self.name))
                .table(self.name)
                .col("tenant_id");
            out.push(index.to_owned());
        }
        if !self.natural_key.is_empty() {
            let mut cols: Vec<&'static str> = owner.to_vec();
            cols.extend(
                self.natural_key
                    .iter()
                    .copied()
                    .filter(|c| *c != "tenant_id"),
            );
            out.push(unique(format!("ux_{}_natural_key", self.name), &cols));
        }
        for col in self.columns.iter().filter(|c| c.unique) {
            let global = GLOBALLY_UNIQUE.contains(&(self.name, col.name));
            if self.natural_key == [col.name] && !global {
                continue;
            }
            let mut cols: Vec<&'static str> = if global { Vec::new() } else { owner.to_vec() };
            cols.push(col.name);
            out.push(unique(format!("ux_{}_{}", self.name, col.name), &cols));
        }
        out
    }

    /// True when every row has an owner (`tenant_id NOT NULL`).
    fn has_required_owner(&self) -> bool {
        self.tenant_owned
            && self
                .columns
                .iter()
                .any(|c| !c.nullable && c.name == "tenant_id")
    }
}

/// Unique columns of tenant-owned tables that are unique across all tenants, not per tenant
/// (a host name routes to exactly one tenant). Migration 5 narrows `domains.host` to verified
/// hosts (`ux_domains_verified_host`).
const GLOBALLY_UNIQUE: &[(&str, &str)] = &[("domains", "host")];
