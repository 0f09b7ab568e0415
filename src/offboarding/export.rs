//! `exportTenant`: a tenant as a tar archive, streamed while it is read.
//!
//! The archive, in the order it is written:
//!
//! 1. `export.json`: the plan, first, so a reader can show progress from the start: the
//!    tenant, the sheet files to come, and the number of rows of every runtime class;
//! 2. `sheets/`: the configuration as provisioning sheets (`sheet.schema.json`,
//!    `vocabulary.yaml`, one `<application>.yaml` each, see [`super::sheets_out`]) that
//!    `importSheets` / `forklift sheets import` read as a template;
//! 3. `runtime/<table>/<nnnnn>.jsonl`: the tenant's runtime rows (every tenant-owned class the
//!    fork does not copy: organizations, memberships, teams, domains, branding, features, fork
//!    runs and events, audit entries, lineage, …), one JSON object per line, column → value
//!    (bytes as base64), at most [`PAGE_ROWS`] rows a file, read by keyset pages;
//! 4. `manifest.json`: written last, `complete: true`, with what was written. An archive
//!    without it (or without tar's end marker) was cut short.
//!
//! Everything is read in one snapshot transaction of the request pool naming the tenant (row-
//! level security, and the tenant condition written out as well), a class, an application or
//! a page at a time: the tenant is never in memory whole.

use std::{collections::BTreeMap, future::Future};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{sheets_out, tar};
use crate::{registry::RowClass, rows::Row, state::AppState};

/// Rows per runtime file.
pub const PAGE_ROWS: u64 = 1000;

/// Where archive bytes go: the HTTP response body, or a file.
pub trait Sink: Send {
    /// Takes the next bytes of the archive; an error stops the export (the client went away).
    fn write(&mut self, bytes: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl Sink for tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>> {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.send(Ok(bytes))
            .await
            .map_err(|_| anyhow::anyhow!("the reader of the export went away"))
    }
}

impl Sink for tokio::fs::File {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        Ok(self.write_all(&bytes).await?)
    }
}

/// A step of an export, for progress reports (the command line draws them).
#[derive(Clone, Debug)]
pub enum Step {
    /// The plan: rows per runtime table, and the sheet files to come.
    Planned {
        sheets: usize,
        rows: BTreeMap<String, u64>,
    },
    /// A file was written: its name and the rows it holds (0 for sheets).
    Wrote { file: String, rows: u64 },
}

/// What an export wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The sheet files, in order.
    pub sheets: Vec<String>,
    /// Runtime rows per table.
    pub rows: BTreeMap<String, u64>,
    /// Runtime files written.
    pub files: u64,
    /// Bytes of the archive.
    pub bytes: u64,
    /// What the sheets could not carry.
    pub omitted: sheets_out::Omitted,
}

struct Writer<'a, S: Sink> {
    sink: &'a mut S,
    mtime: i64,
    bytes: u64,
}

impl<S: Sink> Writer<'_, S> {
    async fn put(&mut self, name: &str, content: &[u8]) -> anyhow::Result<()> {
        let entry = tar::entry(name, content, self.mtime)?;
        self.bytes += entry.len() as u64;
        self.sink.write(entry).await
    }
}

/// The tenant-owned classes whose rows are runtime data (everything the fork does not copy),
/// parents first.
pub fn runtime_classes(state: &AppState) -> Vec<&RowClass> {
    state
        .registry
        .tenant_owned_order()
        .into_iter()
        .filter(|c| !c.fork.is_copied())
        .collect()
}

async fn count(tx: &DatabaseTransaction, table: &str, tenant: Uuid) -> anyhow::Result<u64> {
    let mut select = Query::select();
    select
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    let row = tx
        .query_one(&select)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0))
}

/// Writes the archive of `tenant` to `sink`, reporting each step to `progress`.
pub async fn export<S: Sink>(
    state: &AppState,
    tenant: &entity::tenants::Model,
    sink: &mut S,
    mut progress: impl FnMut(&Step) + Send,
) -> anyhow::Result<Summary> {
    let tx = crate::access::begin_tenant_snapshot(&state.scoped_db.request, tenant.id)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    // A placed tenant's configuration and lineage are read from a snapshot of its database.
    let placed_tx = match &tenant.database {
        Some(name) => {
            let pool = crate::placement::pool(&state.tenant_pools, name)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            Some(
                crate::access::begin_tenant_snapshot(&pool, tenant.id)
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message()))?,
            )
        }
        None => None,
    };
    let config_tx = placed_tx.as_ref().unwrap_or(&tx);
    let tx_of = |class: &RowClass| {
        if crate::placement::is_placed(class) {
            config_tx
        } else {
            &tx
        }
    };
    let now = state.clock.now();
    let mut out = Writer {
        sink,
        mtime: now.timestamp(),
        bytes: 0,
    };
    let classes = runtime_classes(state);
    let mut planned = BTreeMap::new();
    for class in &classes {
        planned.insert(
            class.table.clone(),
            count(tx_of(class), &class.table, tenant.id).await?,
        );
    }
    let applications = sheets_out::tenant_applications(config_tx, tenant.id).await?;
    let mut sheet_files = vec![
        "sheets/sheet.schema.json".to_string(),
        "sheets/vocabulary.yaml".to_string(),
    ];
    sheet_files.extend(
        applications
            .iter()
            .map(|a| format!("sheets/{}.yaml", a.code)),
    );
    let plan = json!({
        "format": "forklift-export/1",
        "exportedAt": now.to_rfc3339(),
        "tenant": {
            "id": tenant.id,
            "slug": tenant.slug,
            "name": tenant.name,
            "status": tenant.status,
            "plan": tenant.plan,
            "createdAt": tenant.created_at.to_rfc3339(),
        },
        "sheets": sheet_files,
        "runtimeRows": planned,
        "pageRows": PAGE_ROWS,
    });
    out.put("export.json", &pretty(&plan)?).await?;
    progress(&Step::Planned {
        sheets: sheet_files.len(),
        rows: planned.clone(),
    });

    let mut summary = Summary::default();
    out.put(
        "sheets/sheet.schema.json",
        crate::sheets::format::json_schema().as_bytes(),
    )
    .await?;
    let (vocabulary, lookups) = sheets_out::vocabulary(config_tx, tenant.id).await?;
    out.put("sheets/vocabulary.yaml", vocabulary.as_bytes())
        .await?;
    summary.sheets.push("sheets/vocabulary.yaml".into());
    for app in &applications {
        let text =
            sheets_out::application(config_tx, tenant.id, app, &lookups, &mut summary.omitted)
                .await?;
        let name = format!("sheets/{}.yaml", app.code);
        out.put(&name, text.as_bytes()).await?;
        progress(&Step::Wrote {
            file: name.clone(),
            rows: 0,
        });
        summary.sheets.push(name);
    }
    sheets_out::count_omitted(config_tx, tenant.id, &mut summary.omitted).await?;

    for class in &classes {
        let mut after: Option<Uuid> = None;
        let mut page = 0u32;
        let mut total = 0u64;
        loop {
            let mut select = Query::select();
            select
                .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
                .from(Alias::new(&class.table))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.id))
                .order_by(Alias::new("id"), Order::Asc)
                .limit(PAGE_ROWS);
            if let Some(last) = after {
                select.and_where(Expr::col(Alias::new("id")).gt(last));
            }
            let rows = tx_of(class).query_all(&select).await?;
            if rows.is_empty() {
                break;
            }
            let mut text = Vec::new();
            for result in &rows {
                let row = Row::read(result, class)?;
                after = Some(row.id());
                let object: serde_json::Map<String, Json> = class
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), row.get(&c.name).to_json()))
                    .collect();
                serde_json::to_writer(&mut text, &Json::Object(object))?;
                text.push(b'\n');
            }
            page += 1;
            let n = rows.len() as u64;
            total += n;
            let name = format!("runtime/{}/{page:05}.jsonl", class.table);
            out.put(&name, &text).await?;
            summary.files += 1;
            progress(&Step::Wrote {
                file: name,
                rows: n,
            });
            if n < PAGE_ROWS {
                break;
            }
        }
        summary.rows.insert(class.table.clone(), total);
    }
    if let Some(placed) = placed_tx {
        placed.commit().await?;
    }
    tx.commit().await?;
    let manifest = json!({
        "format": "forklift-export/1",
        "complete": true,
        "tenant": { "id": tenant.id, "slug": tenant.slug },
        "sheets": summary.sheets,
        "runtimeRows": summary.rows,
        "runtimeFiles": summary.files,
        "omitted": summary.omitted,
    });
    out.put("manifest.json", &pretty(&manifest)?).await?;
    let end = tar::end();
    out.bytes += end.len() as u64;
    out.sink.write(end).await?;
    summary.bytes = out.bytes;
    Ok(summary)
}

fn pretty(value: &Json) -> anyhow::Result<Vec<u8>> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    Ok(text)
}
