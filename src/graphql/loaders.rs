//! Batched loading for nested fields: one SQL statement per (class, column) per nesting level,
//! whatever the number of parents. A loader lives for one request and carries its scope.

use std::{collections::HashMap, sync::Arc};

use uuid::Uuid;

use crate::{access, registry::Registry, rows::Row, scope::RequestContext};

/// A key: rows of `table` whose `column` equals `id`, under a nested list's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowsKey {
    pub table: Arc<str>,
    pub column: Arc<str>,
    pub args: Option<Arc<ArgsKey>>,
    pub id: Uuid,
}

impl RowsKey {
    /// Rows of `table` whose `column` equals `id`, in id order.
    pub fn plain(table: Arc<str>, column: Arc<str>, id: Uuid) -> RowsKey {
        RowsKey {
            table,
            column,
            args: None,
            id,
        }
    }
}

/// A nested list's arguments as a key: equal when their canonical text is.
#[derive(Debug)]
pub struct ArgsKey {
    pub canonical: String,
    pub args: access::NestedArgs,
}

impl ArgsKey {
    /// The key of `args`.
    pub fn new(args: access::NestedArgs) -> ArgsKey {
        ArgsKey {
            canonical: format!("{args:?}"),
            args,
        }
    }
}

impl PartialEq for ArgsKey {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for ArgsKey {}

impl std::hash::Hash for ArgsKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

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
        type Group = (Arc<str>, Arc<str>, Option<Arc<ArgsKey>>);
        let mut groups: HashMap<Group, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.table.clone(), key.column.clone(), key.args.clone()))
                .or_default()
                .push(key.id);
        }
        let mut out: HashMap<RowsKey, Vec<Row>> = HashMap::new();
        for ((table, column, args), values) in groups {
            let class = self
                .registry
                .by_table(&table)
                .ok_or_else(|| Arc::new(async_graphql::Error::new("unknown class")))?;
            let plain = access::NestedArgs::default();
            let nested = args.as_ref().map_or(&plain, |a| &a.args);
            let rows = access::by_column(&self.db, &self.ctx, class, &column, &values, nested)
                .await
                .map_err(|e| Arc::new(e.into_graphql()))?;
            let key = |id: Uuid| RowsKey {
                table: table.clone(),
                column: column.clone(),
                args: args.clone(),
                id,
            };
            for value in &values {
                out.entry(key(*value)).or_default();
            }
            for row in rows {
                if let Some(v) = row.get(&column).as_uuid() {
                    out.entry(key(v)).or_default().push(row);
                }
            }
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}
