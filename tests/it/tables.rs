//! The schema is described once: the migrated database is what the entities say (issue #20).
//!
//! A fresh database is migrated to the latest version and read back from the catalog
//! (`pg_catalog` on PostgreSQL, `pragma_table_info` / `pragma_foreign_key_list` /
//! `pragma_index_list` on SQLite). The reference is the entity:
//!
//! - columns, types and nullability: the table sea-orm's `Schema` builds from every column's
//!   `Column::def()`, created beside the real one and read back the same way;
//! - the primary key: the entity's;
//! - foreign keys: the entity's `belongs_to` relations, with their columns (a same-tenant
//!   reference is the composite `(tenant_id, x_id) → (tenant_id, id)`) and `on_delete`;
//! - unique indexes: `(tenant_id, id)` for every table with a required owner (the target of the
//!   composite keys), the natural key (`ClassInfo::NATURAL_KEY`, within the owner), the
//!   entity's `unique` columns (within the owner for tenant-owned tables), its composite
//!   `unique_key`s (the indexes sea-orm's `Schema::create_index_from_entity` makes), and the
//!   partial indexes listed in [`PARTIAL_UNIQUE`].
//!
//! The declarative `TableSpec`s of migration 1 are checked against the entity relations too,
//! since isolation by construction rests on their `same_tenant`.

use std::collections::{BTreeMap, BTreeSet};

use entity::class::ClassInfo;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IdenStatic, Iterable,
    PrimaryKeyToColumn, RelationTrait, Schema, Statement,
    sea_query::{Alias, ForeignKeyAction, Table, TableCreateStatement, TableRef},
};

use crate::harness::TestApp;

/// A foreign key: columns, the table and columns it points at, its `ON DELETE` action.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ForeignKey {
    pub(crate) from: Vec<String>,
    pub(crate) table: String,
    pub(crate) to: Vec<String>,
    pub(crate) on_delete: String,
}

/// A unique index: its columns, and whether it is partial (`WHERE …`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Unique {
    pub(crate) columns: Vec<String>,
    pub(crate) partial: bool,
}

/// One table as the catalog describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Live {
    /// Column name → (type as the database names it, NOT NULL).
    pub(crate) columns: BTreeMap<String, (String, bool)>,
    pub(crate) primary_key: Vec<String>,
    pub(crate) foreign_keys: BTreeSet<ForeignKey>,
    pub(crate) unique: BTreeSet<Unique>,
}

/// One table as its entity describes it.
struct Expected {
    table: String,
    /// Builds the entity's columns (sea-orm's column definitions) as table `name`.
    create_columns: CreateColumns,
    primary_key: Vec<String>,
    foreign_keys: BTreeSet<ForeignKey>,
    unique: BTreeSet<Unique>,
}

/// Builds a table of an entity's columns under another name.
type CreateColumns = fn(DbBackend, &str) -> TableCreateStatement;

/// The columns of entity `E` as sea-orm's `Schema` defines them, as table `name` (no keys).
fn columns_of<E: EntityTrait>(backend: DbBackend, name: &str) -> TableCreateStatement {
    let schema = Schema::new(backend);
    let mut create = Table::create();
    create.table(Alias::new(name));
    for column in E::Column::iter() {
        create.col(schema.get_column_def::<E>(column));
    }
    create.to_owned()
}

/// Unique indexes with a `WHERE` clause: rules that sea-orm entities cannot carry.
const PARTIAL_UNIQUE: &[(&str, &[&str])] = &[
    // One root organization per tenant (migration 1).
    ("organizations", &["tenant_id"]),
    // A host is held by at most one tenant once verified (migration 6).
    ("domains", &["host"]),
];

fn action_name(action: Option<ForeignKeyAction>) -> String {
    match action {
        Some(ForeignKeyAction::Cascade) => "CASCADE",
        Some(ForeignKeyAction::Restrict) => "RESTRICT",
        Some(ForeignKeyAction::SetNull) => "SET NULL",
        Some(ForeignKeyAction::SetDefault) => "SET DEFAULT",
        Some(ForeignKeyAction::NoAction) | None => "NO ACTION",
        Some(other) => panic!("unexpected ON DELETE {other:?}"),
    }
    .to_string()
}

fn table_of(table: &TableRef) -> String {
    match table {
        TableRef::Table(name, _) => name.1.to_string(),
        other => panic!("unexpected table reference {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What entity `E` says its table is.
fn expected<E>() -> Expected
where
    E: EntityTrait + ClassInfo + Default,
{
    let table = E::default().table_name().to_string();
    let primary_key = E::PrimaryKey::iter()
        .map(|key| key.into_column().as_str().to_string())
        .collect();
    let foreign_keys = E::Relation::iter()
        .map(|relation| relation.def())
        .filter(|def| !def.is_owner && !def.skip_fk && table_of(&def.from_tbl) == table)
        .map(|def| ForeignKey {
            from: def.from_col.iter().map(|c| c.to_string()).collect(),
            table: table_of(&def.to_tbl),
            to: def.to_col.iter().map(|c| c.to_string()).collect(),
            on_delete: action_name(def.on_delete),
        })
        .collect();
    let tenant_id = E::Column::iter().find(|c| c.as_str() == "tenant_id");
    let owner: Vec<String> = tenant_id.iter().map(|_| "tenant_id".to_string()).collect();
    let within_owner = |columns: &[&str]| {
        let mut out = owner.clone();
        out.extend(strings(columns).into_iter().filter(|c| c != "tenant_id"));
        Unique {
            columns: out,
            partial: false,
        }
    };
    let mut unique = BTreeSet::new();
    if tenant_id.is_some_and(|c| !sea_orm::ColumnTrait::def(&c).is_null()) {
        unique.insert(within_owner(&["id"]));
    }
    if !E::NATURAL_KEY.is_empty() {
        unique.insert(within_owner(E::NATURAL_KEY));
    }
    for column in E::Column::iter() {
        if sea_orm::ColumnTrait::def(&column).is_unique() {
            unique.insert(within_owner(&[column.as_str()]));
        }
    }
    // Composite unique keys (`unique_key = "…"`), as sea-orm would create them.
    for index in Schema::new(DbBackend::Sqlite).create_index_from_entity(E::default()) {
        if index.is_unique_key() {
            unique.insert(Unique {
                columns: index.get_index_spec().get_column_names(),
                partial: false,
            });
        }
    }
    for (partial_table, columns) in PARTIAL_UNIQUE {
        if *partial_table == table {
            unique.insert(Unique {
                columns: strings(columns),
                partial: true,
            });
        }
    }
    Expected {
        table,
        create_columns: columns_of::<E>,
        primary_key,
        foreign_keys,
        unique,
    }
}

macro_rules! expectations {
    ($($module:ident),* $(,)?) => {
        vec![$(expected::<entity::$module::Entity>()),*]
    };
}

/// Every entity's expectation, in declaration order.
fn all_expected() -> Vec<Expected> {
    entity::for_each_entity!(expectations)
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

fn text(row: &sea_orm::QueryResult, column: &str) -> String {
    row.try_get::<String>("", column)
        .unwrap_or_else(|err| panic!("{column}: {err}"))
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::to_string).collect()
}

/// The tables of the database (without the migration bookkeeping).
pub(crate) async fn live_tables(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                WHERE n.nspname = 'public' AND c.relkind = 'r'"
        }
    };
    rows(db, sql)
        .await
        .iter()
        .map(|row| text(row, "name"))
        .filter(|name| name != "seaql_migrations")
        .collect()
}

/// Table `table` as the catalog describes it.
pub(crate) async fn live(db: &DatabaseConnection, table: &str) -> Live {
    match db.get_database_backend() {
        DbBackend::Sqlite => live_sqlite(db, table).await,
        _ => live_postgres(db, table).await,
    }
}

async fn live_sqlite(db: &DatabaseConnection, table: &str) -> Live {
    let mut out = Live::default();
    let mut primary: Vec<(i64, String)> = Vec::new();
    for row in rows(
        db,
        &format!(
            "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_info('{table}')"
        ),
    )
    .await
    {
        let name = text(&row, "name");
        let pk: i64 = row.try_get("", "pk").expect("pk");
        let not_null: i64 = row.try_get("", "not_null").expect("notnull");
        if pk > 0 {
            primary.push((pk, name.clone()));
        }
        out.columns
            .insert(name, (text(&row, "type").to_lowercase(), not_null == 1));
    }
    primary.sort();
    out.primary_key = primary.into_iter().map(|(_, name)| name).collect();
    let mut keys: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    for row in rows(
        db,
        &format!(
            "SELECT id, \"table\" AS target, \"from\" AS source, \"to\" AS dest, on_delete \
                FROM pragma_foreign_key_list('{table}') ORDER BY id, seq"
        ),
    )
    .await
    {
        let id: i64 = row.try_get("", "id").expect("id");
        let key = keys.entry(id).or_insert_with(|| ForeignKey {
            from: Vec::new(),
            table: text(&row, "target"),
            to: Vec::new(),
            on_delete: text(&row, "on_delete"),
        });
        key.from.push(text(&row, "source"));
        key.to.push(text(&row, "dest"));
    }
    out.foreign_keys = keys.into_values().collect();
    for index in rows(
        db,
        &format!(
            "SELECT name, partial FROM pragma_index_list('{table}') \
                WHERE \"unique\" = 1 AND origin <> 'pk'"
        ),
    )
    .await
    {
        let name = text(&index, "name");
        let partial: i64 = index.try_get("", "partial").expect("partial");
        let columns = rows(
            db,
            &format!("SELECT name FROM pragma_index_info('{name}') ORDER BY seqno"),
        )
        .await
        .iter()
        .map(|row| text(row, "name"))
        .collect();
        out.unique.insert(Unique {
            columns,
            partial: partial == 1,
        });
    }
    out
}

async fn live_postgres(db: &DatabaseConnection, table: &str) -> Live {
    let mut out = Live::default();
    let relation = format!("'public.{table}'::regclass");
    for row in rows(
        db,
        &format!(
            "SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type, \
                attnotnull AS not_null FROM pg_attribute \
                WHERE attrelid = {relation} AND attnum > 0 AND NOT attisdropped"
        ),
    )
    .await
    {
        let not_null: bool = row.try_get("", "not_null").expect("not_null");
        out.columns
            .insert(text(&row, "name"), (text(&row, "type"), not_null));
    }
    // The columns of a key, in key order.
    let columns_of = |relation: &str, keys: &str| {
        format!(
            "(SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
                FROM unnest({keys}) WITH ORDINALITY AS k(attnum, n) \
                JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.attnum)"
        )
    };
    for row in rows(
        db,
        &format!(
            "SELECT {from} AS source, confrelid::regclass::text AS target, {to} AS dest, \
                CASE confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'r' THEN 'RESTRICT' \
                WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END AS on_delete \
                FROM pg_constraint WHERE conrelid = {relation} AND contype = 'f'",
            from = columns_of("conrelid", "conkey"),
            to = columns_of("confrelid", "confkey"),
        ),
    )
    .await
    {
        out.foreign_keys.insert(ForeignKey {
            from: split(&text(&row, "source")),
            table: text(&row, "target"),
            to: split(&text(&row, "dest")),
            on_delete: text(&row, "on_delete"),
        });
    }
    for row in rows(
        db,
        &format!(
            "SELECT {columns} AS columns, indisprimary AS is_primary, indpred IS NOT NULL AS partial \
                FROM pg_index WHERE indrelid = {relation} AND indisunique",
            columns = columns_of("indrelid", "indkey::int2[]"),
        ),
    )
    .await
    {
        let columns = split(&text(&row, "columns"));
        if row.try_get::<bool>("", "is_primary").expect("is_primary") {
            out.primary_key = columns;
        } else {
            out.unique.insert(Unique {
                columns,
                partial: row.try_get("", "partial").expect("partial"),
            });
        }
    }
    out
}

/// The columns, types and nullability of the table sea-orm builds from the entity, created as
/// a scratch table beside the real one and read back through the same catalog queries.
async fn reference_columns(
    owner: &DatabaseConnection,
    expected: &Expected,
) -> BTreeMap<String, (String, bool)> {
    let backend = owner.get_database_backend();
    let name = format!("entity_reference_{}", expected.table);
    owner
        .execute(&(expected.create_columns)(backend, &name))
        .await
        .unwrap_or_else(|err| panic!("create {name}: {err}"));
    let columns = live(owner, &name).await.columns;
    owner
        .execute(&Table::drop().table(Alias::new(&name)).to_owned())
        .await
        .expect("drop the reference table");
    columns
}

crate::both!(the_migrated_database_is_what_the_entities_say);
async fn the_migrated_database_is_what_the_entities_say(app: TestApp) {
    let owner = app.owner_db().await;
    let expected = all_expected();
    let tables: BTreeSet<String> = expected.iter().map(|e| e.table.clone()).collect();
    assert_eq!(live_tables(&owner).await, tables, "one table per entity");
    let mut mismatches = Vec::new();
    for entity in &expected {
        let table = &entity.table;
        let actual = live(&owner, table).await;
        let columns = reference_columns(&owner, entity).await;
        if actual.columns != columns {
            mismatches.push(format!(
                "{table}: columns\n  database {:?}\n  entity   {columns:?}",
                actual.columns
            ));
        }
        // On PostgreSQL the distributable tables' keys include the tenant (migration 11,
        // issue #19): the entity's identity is still its id.
        let primary_key = if owner.get_database_backend() == DbBackend::Postgres
            && migration::DISTRIBUTED.contains(&table.as_str())
        {
            strings(&["tenant_id", "id"])
        } else {
            entity.primary_key.clone()
        };
        if actual.primary_key != primary_key {
            mismatches.push(format!(
                "{table}: primary key {:?}, entity {primary_key:?}",
                actual.primary_key
            ));
        }
        if actual.foreign_keys != entity.foreign_keys {
            mismatches.push(format!(
                "{table}: foreign keys\n  database {:?}\n  entity   {:?}",
                actual.foreign_keys, entity.foreign_keys
            ));
        }
        if actual.unique != entity.unique {
            mismatches.push(format!(
                "{table}: unique indexes\n  database {:?}\n  entity   {:?}",
                actual.unique, entity.unique
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "the migrated database differs from the entities:\n{}",
        mismatches.join("\n")
    );
}

/// Migration 1's `TableSpec`s name the same references as the entity relations, and a
/// reference is composite (same tenant) exactly when the entity's relation is.
#[test]
fn table_specs_agree_with_the_entity_relations() {
    let expected: BTreeMap<String, Expected> = all_expected()
        .into_iter()
        .map(|e| (e.table.clone(), e))
        .collect();
    let mut checked = 0;
    for spec in migration::tables::TABLES {
        let entity = expected
            .get(spec.name)
            .unwrap_or_else(|| panic!("table {} has no entity", spec.name));
        let from_spec: BTreeSet<(Vec<String>, String)> = spec
            .foreign_keys
            .iter()
            .map(|fk| {
                let from = if fk.same_tenant {
                    strings(&["tenant_id", fk.column])
                } else {
                    strings(&[fk.column])
                };
                (from, fk.table.to_string())
            })
            .collect();
        let from_entity: BTreeSet<(Vec<String>, String)> = entity
            .foreign_keys
            .iter()
            .map(|fk| (fk.from.clone(), fk.table.clone()))
            .collect();
        assert_eq!(
            from_spec, from_entity,
            "{}: the TableSpec's references (same_tenant) against the entity's relations",
            spec.name
        );
        checked += from_spec.len();
    }
    assert!(checked > 40, "{checked} references checked");
}
