//! Batched loading for nested fields: one SQL statement per (class, column) per nesting level,
//! whatever the number of parents. A loader lives for one request and carries its scope.

use std::{collections::HashMap, sync::Arc};

use uuid::Uuid;

use crate::{access, registry::Registry, rows::Row, scope::RequestContext};

/// A key: rows of `table` whose `column` equals the uuid.
pub type RowsKey = (Arc<str>, Arc<str>, Uuid);

/// Loads rows by a uuid column, grouped by (table, column) into one `IN (…)` query each.
pub struct RowsLoader {
    /// The scoped layer's connections (the request pool; the system pool for all-tenant reads).
    pub db: access::ScopedDb,
    pub ctx: RequestContext,
    pub registry: Registry,
}

impl async_graphql::dataloader::Loader<RowsKey> for RowsLoader {
    type Value = Arc<Vec<Row>>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[RowsKey]) -> Result<HashMap<RowsKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(Arc<str>, Arc<str>), Vec<Uuid>> = HashMap::new();
        for (table, column, value) in keys {
            groups
                .entry((table.clone(), column.clone()))
                .or_default()
                .push(*value);
        }
        let mut out: HashMap<RowsKey, Vec<Row>> = HashMap::new();
        for ((table, column), values) in groups {
            let class = self
                .registry
                .by_table(&table)
                .ok_or_else(|| Arc::new(async_graphql::Error::new("unknown class")))?;
            let rows = access::by_column(&self.db, &self.ctx, class, &column, &values)
                .await
                .map_err(|e| Arc::new(e.into_graphql()))?;
            for value in &values {
                out.entry((table.clone(), column.clone(), *value))
                    .or_default();
            }
            for row in rows {
                if let Some(v) = row.get(&column).as_uuid() {
                    out.entry((table.clone(), column.clone(), v))
                        .or_default()
                        .push(row);
                }
            }
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}
