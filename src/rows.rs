//! Rows of any class, as the generic data layer, the GraphQL layer and the fork engine see them.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value, sea_query::SelectStatement};
use uuid::Uuid;

use crate::registry::{ColumnKind, RowClass};

/// One column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Uuid(Uuid),
    Text(String),
    Int(i64),
    Bool(bool),
    Json(serde_json::Value),
    Timestamp(DateTime<Utc>),
    Bytes(Vec<u8>),
}

impl Cell {
    /// Reads column `name` of kind `kind` from a query result.
    pub fn read(result: &QueryResult, name: &str, kind: ColumnKind) -> Result<Cell, DbErr> {
        Ok(match kind {
            ColumnKind::Uuid => result
                .try_get::<Option<Uuid>>("", name)?
                .map_or(Cell::Null, Cell::Uuid),
            ColumnKind::Text => result
                .try_get::<Option<String>>("", name)?
                .map_or(Cell::Null, Cell::Text),
            ColumnKind::Int => result
                .try_get::<Option<i32>>("", name)?
                .map_or(Cell::Null, |v| Cell::Int(v.into())),
            ColumnKind::Bool => result
                .try_get::<Option<bool>>("", name)?
                .map_or(Cell::Null, Cell::Bool),
            ColumnKind::Json => result
                .try_get::<Option<serde_json::Value>>("", name)?
                .map_or(Cell::Null, Cell::Json),
            ColumnKind::Timestamp => result
                .try_get::<Option<DateTime<Utc>>>("", name)?
                .map_or(Cell::Null, Cell::Timestamp),
            ColumnKind::Bytes => result
                .try_get::<Option<Vec<u8>>>("", name)?
                .map_or(Cell::Null, Cell::Bytes),
        })
    }

    /// Reads the `index`th column of a query result, of kind `kind`.
    pub fn read_at(result: &QueryResult, index: usize, kind: ColumnKind) -> Result<Cell, DbErr> {
        Ok(match kind {
            ColumnKind::Uuid => result
                .try_get_by_index::<Option<Uuid>>(index)?
                .map_or(Cell::Null, Cell::Uuid),
            ColumnKind::Text => result
                .try_get_by_index::<Option<String>>(index)?
                .map_or(Cell::Null, Cell::Text),
            ColumnKind::Int => result
                .try_get_by_index::<Option<i32>>(index)?
                .map_or(Cell::Null, |v| Cell::Int(v.into())),
            ColumnKind::Bool => result
                .try_get_by_index::<Option<bool>>(index)?
                .map_or(Cell::Null, Cell::Bool),
            ColumnKind::Json => result
                .try_get_by_index::<Option<serde_json::Value>>(index)?
                .map_or(Cell::Null, Cell::Json),
            ColumnKind::Timestamp => result
                .try_get_by_index::<Option<DateTime<Utc>>>(index)?
                .map_or(Cell::Null, Cell::Timestamp),
            ColumnKind::Bytes => result
                .try_get_by_index::<Option<Vec<u8>>>(index)?
                .map_or(Cell::Null, Cell::Bytes),
        })
    }

    /// The bind value for a column of kind `kind` (typed, also when null).
    pub fn to_value(&self, kind: ColumnKind) -> Value {
        match (self, kind) {
            (Cell::Uuid(v), _) => Some(*v).into(),
            (Cell::Text(v), _) => Some(v.clone()).into(),
            (Cell::Int(v), _) => Some(*v as i32).into(),
            (Cell::Bool(v), _) => Some(*v).into(),
            (Cell::Json(v), _) => Some(v.clone()).into(),
            (Cell::Timestamp(v), _) => Some(*v).into(),
            (Cell::Bytes(v), _) => Some(v.clone()).into(),
            (Cell::Null, ColumnKind::Uuid) => Option::<Uuid>::None.into(),
            (Cell::Null, ColumnKind::Text) => Option::<String>::None.into(),
            (Cell::Null, ColumnKind::Int) => Option::<i32>::None.into(),
            (Cell::Null, ColumnKind::Bool) => Option::<bool>::None.into(),
            (Cell::Null, ColumnKind::Json) => Option::<serde_json::Value>::None.into(),
            (Cell::Null, ColumnKind::Timestamp) => Option::<DateTime<Utc>>::None.into(),
            (Cell::Null, ColumnKind::Bytes) => Option::<Vec<u8>>::None.into(),
        }
    }

    /// The UUID in this cell, if any.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Cell::Uuid(v) => Some(*v),
            _ => None,
        }
    }

    /// The text in this cell, if any.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean in this cell (null reads as false).
    pub fn as_bool(&self) -> bool {
        matches!(self, Cell::Bool(true))
    }

    /// The cell as JSON (bytes become base64).
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine;
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Uuid(v) => v.to_string().into(),
            Cell::Text(v) => v.clone().into(),
            Cell::Int(v) => (*v).into(),
            Cell::Bool(v) => (*v).into(),
            Cell::Json(v) => v.clone(),
            Cell::Timestamp(v) => v.to_rfc3339().into(),
            Cell::Bytes(v) => base64::engine::general_purpose::STANDARD.encode(v).into(),
        }
    }

    /// The zero value used for a non-null column that an input left out.
    pub fn default_for(kind: ColumnKind, column: &str) -> Option<Cell> {
        Some(match kind {
            ColumnKind::Text => return None,
            ColumnKind::Uuid => return None,
            ColumnKind::Int => Cell::Int(0),
            ColumnKind::Bool => Cell::Bool(false),
            ColumnKind::Json => {
                if matches!(
                    column,
                    "parameters" | "side_effects" | "columns" | "widgets" | "fields" | "services"
                ) {
                    Cell::Json(serde_json::json!([]))
                } else {
                    Cell::Json(serde_json::json!({}))
                }
            }
            ColumnKind::Timestamp => Cell::Timestamp(Utc::now()),
            ColumnKind::Bytes => return None,
        })
    }
}

/// One row of some class: column name → value. Cloning is cheap (the values are shared until
/// one clone changes them), which matters when GraphQL hands rows down to nested fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub values: Arc<HashMap<String, Cell>>,
}

impl Row {
    /// Runs `select` on `db` and reads every result as a row of `class`.
    pub async fn query_all(
        db: &impl ConnectionTrait,
        select: &SelectStatement,
        class: &RowClass,
    ) -> Result<Vec<Row>, DbErr> {
        db.query_all(select)
            .await?
            .iter()
            .map(|r| Row::read(r, class))
            .collect()
    }

    /// Reads every column of `class` from a query result.
    pub fn read(result: &QueryResult, class: &RowClass) -> Result<Row, DbErr> {
        let mut values = HashMap::with_capacity(class.columns.len());
        for column in &class.columns {
            values.insert(
                column.name.clone(),
                Cell::read(result, &column.name, column.kind)?,
            );
        }
        Ok(Row {
            values: Arc::new(values),
        })
    }

    /// Sets `column` to `cell`.
    pub fn set(&mut self, column: impl Into<String>, cell: Cell) {
        Arc::make_mut(&mut self.values).insert(column.into(), cell);
    }

    /// The value of `column` (null when absent).
    pub fn get(&self, column: &str) -> &Cell {
        self.values.get(column).unwrap_or(&Cell::Null)
    }

    /// The row's primary key.
    pub fn id(&self) -> Uuid {
        self.get("id").as_uuid().unwrap_or_default()
    }

    /// The row's owner, when tenant-owned.
    pub fn tenant_id(&self) -> Option<Uuid> {
        self.get("tenant_id").as_uuid()
    }
}

impl Row {
    /// Converts a sea-orm model into a generic row of `class` (for the generated types).
    pub fn from_model<M: serde::Serialize>(
        class: &RowClass,
        model: &M,
    ) -> crate::error::AppResult<Row> {
        let json =
            serde_json::to_value(model).map_err(|e| crate::error::AppError::Internal(e.into()))?;
        let mut row = Row::default();
        for column in &class.columns {
            let value = json.get(&column.name).cloned().unwrap_or_default();
            let cell = match (column.kind, value) {
                (_, serde_json::Value::Null) => Cell::Null,
                (ColumnKind::Uuid, serde_json::Value::String(s)) => {
                    Uuid::parse_str(&s).map_or(Cell::Null, Cell::Uuid)
                }
                (ColumnKind::Timestamp, serde_json::Value::String(s)) => {
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map_or(Cell::Null, |t| Cell::Timestamp(t.with_timezone(&Utc)))
                }
                (ColumnKind::Text, serde_json::Value::String(s)) => Cell::Text(s),
                (ColumnKind::Int, v) => v.as_i64().map_or(Cell::Null, Cell::Int),
                (ColumnKind::Bool, v) => v.as_bool().map_or(Cell::Null, Cell::Bool),
                (ColumnKind::Json, v) => Cell::Json(v),
                (_, _) => Cell::Null,
            };
            row.set(column.name.clone(), cell);
        }
        Ok(row)
    }
}
