//! What every entity declares about itself, and the description the registry is built from.
//!
//! An entity says by hand — through [`ClassInfo`] — its [`Plane`], its [`Fork`] phase, its natural
//! key and, for the runtime classes the generic surface exposes, its [`Surface`]. Everything else (table, columns, references) is read from the sea-orm
//! definition by [`describe`], so it cannot drift from the schema the code actually uses.

use sea_orm::{
    ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable, RelationTrait, sea_query::TableRef,
};

/// Who owns the rows of a class (`docs/planes.md`). Decided by the owner column, never by a code branch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Plane {
    /// Shared by everyone (`tenant_id` absent); referenced as-is, never forked.
    Vocabulary,
    /// Template and tenant configuration: owned by the template tenant or by a tenant.
    Configuration,
    /// Tenant-owned rows re-realized by the fork's derived phases (3–5), never copied.
    Derived,
    /// Created explicitly for one tenant (or globally, for users); never copied.
    Runtime,
}

/// Whether and when the fork copies a class.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fork {
    /// Never copied.
    Never,
    /// Phase 1: the application spine (application, membership, actions, presentation).
    Spine,
    /// Phase 2: tenant-wide configuration, ordered by references.
    TenantWide,
    /// Phases 3–5: derived by the engine from other rows, not copied.
    Derived,
}

impl Fork {
    /// True when the fork copies rows of this class (phases 1 and 2).
    pub fn is_copied(self) -> bool {
        matches!(self, Fork::Spine | Fork::TenantWide)
    }
}

/// What the generic GraphQL surface may do with the rows of a class, beyond its plane: the rule
/// the scoped data layer (`forklift::access::access_of`) applies. Configuration and derived
/// classes are decided by their plane alone; a vocabulary class is vocabulary and a runtime class
/// is hidden unless its entity says otherwise.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Surface {
    /// As the plane decides.
    ByPlane,
    /// The tenant catalog: types only, its root fields are hand-written.
    Catalog,
    /// Runtime rows Super Users and above manage through the generic surface.
    Managed,
    /// Runtime rows read through the generic surface and written by their own operations.
    ReadOnly,
    /// Read-only; platform admins may read them without naming a tenant.
    AdminRead,
    /// The audit log.
    AuditLog,
}

/// Declared by hand on every entity: the facts sea-orm cannot carry.
pub trait ClassInfo {
    /// The GraphQL type name of the class (`Application`).
    const NAME: &'static str;
    /// The plane its rows belong to.
    const PLANE: Plane;
    /// Whether and in which phase the fork copies it.
    const FORK: Fork;
    /// Columns that identify a row within its owner (unique together with `tenant_id`); empty
    /// when the class has no natural key (fork runs, audit entries). `["tenant_id"]` alone means
    /// one row per tenant.
    const NATURAL_KEY: &'static [&'static str];
    /// How the generic surface exposes the class beyond its plane (most classes: by the plane).
    const SURFACE: Surface = Surface::ByPlane;
}

/// The storage type of a column, as the generic data layer and the fork engine see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    Uuid,
    Text,
    Int,
    Bool,
    Json,
    Timestamp,
    Bytes,
}

/// One column of a class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDesc {
    pub name: String,
    pub kind: ColumnKind,
    pub nullable: bool,
}

/// One outgoing reference of a class: `column` points at `table.id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceDesc {
    pub column: String,
    pub table: String,
    /// True for a composite `(tenant_id, column) → table(tenant_id, id)` reference: the target
    /// is a row of the same tenant.
    pub same_tenant: bool,
}

/// Everything known about one row class, derived from its entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassDesc {
    pub name: &'static str,
    pub table: String,
    pub plane: Plane,
    pub fork: Fork,
    pub natural_key: Vec<String>,
    pub columns: Vec<ColumnDesc>,
    /// References other than the owner column itself (`tenant_id → tenants`).
    pub references: Vec<ReferenceDesc>,
    /// True when the class has a `tenant_id` owner column.
    pub tenant_owned: bool,
    /// How the generic surface exposes it beyond its plane.
    pub surface: Surface,
}

fn kind_of(column_type: &ColumnType) -> ColumnKind {
    match column_type {
        ColumnType::Uuid => ColumnKind::Uuid,
        ColumnType::Integer | ColumnType::BigInteger | ColumnType::SmallInteger => ColumnKind::Int,
        ColumnType::Boolean => ColumnKind::Bool,
        ColumnType::Json | ColumnType::JsonBinary => ColumnKind::Json,
        ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime => {
            ColumnKind::Timestamp
        }
        ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => ColumnKind::Bytes,
        _ => ColumnKind::Text,
    }
}

fn table_name(table: &TableRef) -> String {
    match table {
        TableRef::Table(name, _) => name.1.to_string(),
        other => format!("{other:?}"),
    }
}

/// Describes entity `E` from its sea-orm definition and its [`ClassInfo`].
pub fn describe<E>() -> ClassDesc
where
    E: EntityTrait + ClassInfo + Default,
{
    let table = E::default().table_name().to_string();
    let columns: Vec<ColumnDesc> = E::Column::iter()
        .map(|column| ColumnDesc {
            name: column.as_str().to_string(),
            kind: kind_of(column.def().get_column_type()),
            nullable: column.def().is_null(),
        })
        .collect();
    let tenant_owned = columns.iter().any(|c| c.name == "tenant_id");
    let references = E::Relation::iter()
        .map(|relation| relation.def())
        // `belongs_to` relations: this table holds the foreign key. (sea-orm marks the
        // `has_many`/`has_one` side, built by reversing a `belongs_to`, as the owner.)
        .filter(|def| !def.is_owner && table_name(&def.from_tbl) == table)
        .filter_map(|def| {
            let from: Vec<String> = def.from_col.iter().map(|c| c.to_string()).collect();
            let own: Vec<&String> = from.iter().filter(|c| c.as_str() != "tenant_id").collect();
            let column = (*own.first()?).clone();
            Some(ReferenceDesc {
                column,
                table: table_name(&def.to_tbl),
                same_tenant: from.len() == 2,
            })
        })
        .collect();
    ClassDesc {
        name: E::NAME,
        table,
        plane: E::PLANE,
        fork: E::FORK,
        natural_key: E::NATURAL_KEY.iter().map(|k| String::from(*k)).collect(),
        columns,
        references,
        tenant_owned,
        surface: E::SURFACE,
    }
}

macro_rules! describe_all {
    ($($module:ident),* $(,)?) => {
        vec![$(describe::<crate::$module::Entity>()),*]
    };
}

/// Every row class, in declaration order.
pub fn all() -> Vec<ClassDesc> {
    crate::for_each_entity!(describe_all)
}
