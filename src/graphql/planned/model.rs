//! The planner's picture of the generated surface: for every class the generic layer shows, its
//! object, connection and edge types with the fields [`classes`](super::super::classes) gives
//! them, the root fields, and the `filter` and `orderBy` inputs. Built from the same functions
//! that build the schema, so the two cannot disagree about what a field is.

use std::{collections::HashMap, sync::Arc};

use crate::{
    access::{ClassAccess, access_of},
    graphql::{
        classes::{self, ColumnShape},
        enums::EnumDef,
    },
    registry::{ColumnKind, Registry, RowClass},
};

/// An index into [`Surface::classes`].
pub type ClassId = usize;

/// A column shown as a scalar or enum field.
#[derive(Clone, Debug)]
pub struct ColumnField {
    pub column: String,
    pub kind: ColumnKind,
    pub nullable: bool,
    /// The enum the column holds: its stored text must be one of the members.
    pub enumeration: Option<&'static EnumDef>,
    /// For a reference column: the type whose global id the value is.
    pub id_type: Option<String>,
}

/// A field of a class's object type, as the planner serves it.
#[derive(Clone, Debug)]
pub enum ObjectField {
    /// `id`: the row's global id.
    Id,
    /// `tenantId`: the owning tenant's global id.
    TenantId,
    /// A column.
    Column(ColumnField),
    /// The object a reference column points at, loaded by id.
    Reference {
        column: String,
        target: ClassId,
        nullable: bool,
    },
    /// The rows of another class that point at this one (`Application.actions`).
    Children { child: ClassId, column: String },
}

/// A field of a connection's `filter` input.
#[derive(Clone, Debug)]
pub struct FilterField {
    pub column: String,
    pub kind: ColumnKind,
    pub enumeration: Option<&'static EnumDef>,
    /// For a reference column: the type the global id must name.
    pub id_type: Option<String>,
}

/// One class of the generated surface.
#[derive(Debug)]
pub struct ClassModel {
    pub class: Arc<RowClass>,
    /// The object type's name (`Application`).
    pub name: &'static str,
    /// The index of `id` among the class's columns.
    pub id_index: usize,
    /// The index of `tenant_id`, for tenant-owned classes.
    pub tenant_index: Option<usize>,
    pub connection: String,
    pub edge: String,
    pub filter_type: String,
    pub order_type: String,
    pub fields: HashMap<String, ObjectField>,
    pub filter: HashMap<String, FilterField>,
    /// `orderBy` item → (column, descending).
    pub order: HashMap<String, (String, bool)>,
}

/// A root field the planner serves.
#[derive(Clone, Copy, Debug)]
pub enum RootField {
    /// `applications(first, after, last, before, filter, orderBy)`.
    List(ClassId),
    /// `application(id)`.
    One(ClassId),
}

/// Everything the planner knows about the schema.
#[derive(Debug, Default)]
pub struct Surface {
    pub classes: Vec<ClassModel>,
    pub by_object: HashMap<String, ClassId>,
    pub by_connection: HashMap<String, ClassId>,
    pub by_edge: HashMap<String, ClassId>,
    pub roots: HashMap<String, RootField>,
}

impl Surface {
    /// The surface of `registry` as `schema` serves it. A generated field that the finished
    /// schema does not have with the generated type (hand-written code replaced it) is left out,
    /// like every field the planner does not know: the executor answers those.
    pub fn new(registry: &Registry, schema: &async_graphql::registry::Registry) -> Surface {
        let mut surface = Surface::default();
        let shown: Vec<&RowClass> = registry
            .classes()
            .iter()
            .filter(|c| access_of(c) != ClassAccess::Hidden)
            .collect();
        for class in &shown {
            let id = surface.classes.len();
            surface.by_object.insert(class.name.to_string(), id);
            surface
                .by_connection
                .insert(format!("{}Connection", class.name), id);
            surface.by_edge.insert(format!("{}Edge", class.name), id);
            surface.classes.push(ClassModel {
                class: Arc::new((*class).clone()),
                name: class.name,
                id_index: class
                    .columns
                    .iter()
                    .position(|c| c.name == "id")
                    .unwrap_or_default(),
                tenant_index: class.columns.iter().position(|c| c.name == "tenant_id"),
                connection: format!("{}Connection", class.name),
                edge: format!("{}Edge", class.name),
                filter_type: format!("{}Filter", class.name),
                order_type: format!("{}OrderBy", class.name),
                fields: HashMap::new(),
                filter: HashMap::new(),
                order: HashMap::new(),
            });
        }
        for (id, class) in shown.iter().enumerate() {
            let shapes = classes::shapes(registry, class);
            let fields = object_fields(&surface, registry, class, &shapes);
            let model = &mut surface.classes[id];
            model.fields = fields;
            let served = schema.types.get(class.name);
            let type_names: Vec<(usize, &'static str)> =
                shown.iter().enumerate().map(|(i, c)| (i, c.name)).collect();
            model.fields.retain(|field, model_field| {
                let expected = expected_type(model_field, &type_names);
                served
                    .and_then(|t| t.field_by_name(field))
                    .is_some_and(|f| f.ty == expected)
            });
            model.filter = classes::filter_shapes(&shapes)
                .into_iter()
                .map(|s| {
                    let filter = FilterField {
                        column: s.column.clone(),
                        kind: s.kind,
                        enumeration: s.enumeration,
                        id_type: s.id_type.clone(),
                    };
                    (s.field, filter)
                })
                .collect();
            model.order = classes::order_items(&shapes)
                .into_iter()
                .map(|(item, column, desc)| (item, (column, desc)))
                .collect();
            if !matches!(
                access_of(class),
                ClassAccess::Catalog | ClassAccess::AuditLog
            ) {
                surface
                    .roots
                    .insert(classes::plural_field(class), RootField::List(id));
                surface
                    .roots
                    .insert(classes::singular_field(class), RootField::One(id));
            }
        }
        surface
    }
}

/// The GraphQL type the generated surface gives a field, as the schema's registry writes it.
fn expected_type(field: &ObjectField, names: &[(usize, &'static str)]) -> String {
    let name_of = |id: ClassId| names.iter().find(|(i, _)| *i == id).map_or("", |(_, n)| *n);
    match field {
        ObjectField::Id => "ID!".into(),
        ObjectField::TenantId => "ID".into(),
        ObjectField::Column(c) => {
            let base = match (c.enumeration, c.kind) {
                (Some(def), _) => def.name,
                (None, ColumnKind::Uuid) => "ID",
                (None, ColumnKind::Text | ColumnKind::Bytes) => "String",
                (None, ColumnKind::Int) => "Int",
                (None, ColumnKind::Bool) => "Boolean",
                (None, ColumnKind::Json) => "JSON",
                (None, ColumnKind::Timestamp) => "DateTime",
            };
            if c.nullable {
                base.into()
            } else {
                format!("{base}!")
            }
        }
        ObjectField::Reference {
            target, nullable, ..
        } => {
            if *nullable {
                name_of(*target).into()
            } else {
                format!("{}!", name_of(*target))
            }
        }
        ObjectField::Children { child, .. } => format!("[{}!]!", name_of(*child)),
    }
}

fn object_fields(
    surface: &Surface,
    registry: &Registry,
    class: &RowClass,
    shapes: &[ColumnShape],
) -> HashMap<String, ObjectField> {
    let mut fields = HashMap::new();
    fields.insert("id".to_string(), ObjectField::Id);
    if class.tenant_owned {
        fields.insert("tenantId".to_string(), ObjectField::TenantId);
    }
    for shape in shapes {
        fields.insert(
            shape.field.clone(),
            ObjectField::Column(ColumnField {
                column: shape.column.clone(),
                kind: shape.kind,
                nullable: shape.nullable,
                enumeration: shape.enumeration,
                id_type: shape.id_type.clone(),
            }),
        );
        if let Some((target, _, object_field)) = &shape.reference
            && let Some(&target) = surface.by_object.get(target)
        {
            fields.insert(
                object_field.clone(),
                ObjectField::Reference {
                    column: shape.column.clone(),
                    target,
                    nullable: shape.nullable,
                },
            );
        }
    }
    if class.tenant_owned {
        for (field, child, column) in classes::referrer_fields(registry, class) {
            if let Some(&child) = surface.by_object.get(child.name) {
                fields.insert(field, ObjectField::Children { child, column });
            }
        }
    }
    fields
}
