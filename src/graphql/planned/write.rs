//! Writes a planned response straight to JSON bytes, keys in query order, the way the executor
//! would serialise the same data. Anything the executor would answer with an error (a null in a
//! non-null field, a stored value outside its enum) makes the writer give up (`None`), and the
//! request goes to the executor.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::{
    fetch::{Cells, Nested, ObjectData, RootData},
    model::{ColumnField, Surface},
    plan::{
        ConnectionItem, EdgeItem, ListArgs, ObjectItem, ObjectPlan, PageInfoItem, Plan, RootPlan,
    },
};
use crate::{registry::ColumnKind, rows::Cell};

/// The response body `{"data":{…}}`.
pub fn response(surface: &Surface, plan: &Plan, data: &[RootData]) -> Option<Vec<u8>> {
    let mut out = Writer {
        buf: Vec::with_capacity(16 * 1024),
        surface,
    };
    out.raw(b"{\"data\":{");
    for (i, (root, data)) in plan.roots.iter().zip(data).enumerate() {
        if i > 0 {
            out.raw(b",");
        }
        out.root(root, data)?;
    }
    out.raw(b"}}");
    Some(out.buf)
}

struct Writer<'a> {
    buf: Vec<u8>,
    surface: &'a Surface,
}

impl Writer<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn string(&mut self, text: &str) {
        // serde_json's escaping, as the executor's serialisation uses.
        let _ = serde_json::to_writer(&mut self.buf, text);
    }

    /// A base64url string of `text`, quoted (nothing in it needs escaping).
    fn base64(&mut self, text: &[u8]) {
        self.buf.push(b'"');
        let start = self.buf.len();
        self.buf.resize(
            start + base64::encoded_len(text.len(), false).unwrap_or(0),
            0,
        );
        let written = URL_SAFE_NO_PAD
            .encode_slice(text, &mut self.buf[start..])
            .unwrap_or(0);
        self.buf.truncate(start + written);
        self.buf.push(b'"');
    }

    fn global_id(&mut self, type_name: &str, id: Uuid) {
        let mut text = [0u8; 128];
        let name = type_name.as_bytes();
        if name.len() + 37 > text.len() {
            let encoded = crate::graphql::ids::encode(type_name, id);
            self.string(&encoded);
            return;
        }
        text[..name.len()].copy_from_slice(name);
        text[name.len()] = b':';
        let end = name.len() + 1 + 36;
        id.hyphenated().encode_lower(&mut text[name.len() + 1..end]);
        self.base64(&text[..end]);
    }

    /// The cursor of `row` in a list ordered by `args`' key.
    fn cursor(&mut self, table: &str, args: &ListArgs, row: &Cells) {
        let text = args
            .key
            .cursor(table, args.key_columns.iter().map(|&i| &row[i]));
        self.string(&text);
    }

    fn number(&mut self, n: u64) {
        let _ = serde_json::to_writer(&mut self.buf, &n);
    }

    fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    fn root(&mut self, root: &RootPlan, data: &RootData) -> Option<()> {
        match (root, data) {
            (RootPlan::Typename(key), RootData::Typename) => {
                self.raw(key);
                self.raw(b"\"Query\"");
            }
            (
                RootPlan::List {
                    key,
                    class,
                    connection,
                    args,
                },
                RootData::List {
                    rows,
                    offset,
                    total,
                    objects,
                },
            ) => {
                self.raw(key);
                self.raw(b"{");
                let model = &self.surface.classes[*class];
                let mut object_data = objects.iter();
                for (i, item) in connection.items.iter().enumerate() {
                    if i > 0 {
                        self.raw(b",");
                    }
                    match item {
                        ConnectionItem::Typename(key) => {
                            self.raw(key);
                            let name = model.connection.clone();
                            self.string(&name);
                        }
                        ConnectionItem::TotalCount(key) => {
                            self.raw(key);
                            self.number((*total)?);
                        }
                        ConnectionItem::Nodes(key, plan) => {
                            let data = object_data.next()?;
                            self.raw(key);
                            self.raw(b"[");
                            for (n, row) in rows.iter().enumerate() {
                                if n > 0 {
                                    self.raw(b",");
                                }
                                self.object(plan, data, row)?;
                            }
                            self.raw(b"]");
                        }
                        ConnectionItem::Edges(key, items) => {
                            let has_node = items.iter().any(|i| matches!(i, EdgeItem::Node(..)));
                            let data = if has_node {
                                Some(object_data.next()?)
                            } else {
                                None
                            };
                            self.raw(key);
                            self.raw(b"[");
                            let edge = model.edge.clone();
                            for (n, row) in rows.iter().enumerate() {
                                if n > 0 {
                                    self.raw(b",");
                                }
                                self.raw(b"{");
                                for (j, item) in items.iter().enumerate() {
                                    if j > 0 {
                                        self.raw(b",");
                                    }
                                    match item {
                                        EdgeItem::Typename(key) => {
                                            self.raw(key);
                                            self.string(&edge);
                                        }
                                        EdgeItem::Cursor(key) => {
                                            self.raw(key);
                                            self.cursor(&model.class.table, args, row);
                                        }
                                        EdgeItem::Node(key, plan) => {
                                            self.raw(key);
                                            self.object(plan, data?, row)?;
                                        }
                                    }
                                }
                                self.raw(b"}");
                            }
                            self.raw(b"]");
                        }
                        ConnectionItem::PageInfo(key, items) => {
                            self.raw(key);
                            let table = model.class.table.clone();
                            self.page_info(items, (&table, args, rows), *offset, *total)?;
                        }
                    }
                }
                self.raw(b"}");
            }
            (RootPlan::One { key, object, .. }, RootData::One { row, data }) => {
                self.raw(key);
                match row {
                    Some(row) => self.object(object, data, row)?,
                    None => self.raw(b"null"),
                }
            }
            _ => return None,
        }
        Some(())
    }

    fn page_info(
        &mut self,
        items: &[PageInfoItem],
        (table, args, rows): (&str, &ListArgs, &[Cells]),
        offset: Option<u64>,
        total: Option<u64>,
    ) -> Option<()> {
        let n = rows.len() as u64;
        self.raw(b"{");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            match item {
                PageInfoItem::Typename(key) => {
                    self.raw(key);
                    self.raw(b"\"PageInfo\"");
                }
                PageInfoItem::HasNextPage(key) => {
                    self.raw(key);
                    self.bool(offset? + n < total?);
                }
                PageInfoItem::HasPreviousPage(key) => {
                    self.raw(key);
                    self.bool(offset? > 0);
                }
                PageInfoItem::StartCursor(key) => {
                    self.raw(key);
                    if let Some(row) = rows.first() {
                        self.cursor(table, args, row);
                    } else {
                        self.raw(b"null");
                    }
                }
                PageInfoItem::EndCursor(key) => {
                    self.raw(key);
                    if let Some(row) = rows.last() {
                        self.cursor(table, args, row);
                    } else {
                        self.raw(b"null");
                    }
                }
            }
        }
        self.raw(b"}");
        Some(())
    }

    fn object(&mut self, plan: &ObjectPlan, data: &ObjectData, row: &Cells) -> Option<()> {
        let model = &self.surface.classes[plan.class];
        self.raw(b"{");
        let mut nested = data.nested.iter();
        for (i, item) in plan.items.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            match item {
                ObjectItem::Typename(key) => {
                    self.raw(key);
                    self.string(model.name);
                }
                ObjectItem::Id(key) => {
                    self.raw(key);
                    let id = row[model.id_index].as_uuid().unwrap_or_default();
                    self.global_id(model.name, id);
                }
                ObjectItem::TenantId(key) => {
                    self.raw(key);
                    match model.tenant_index.and_then(|t| row[t].as_uuid()) {
                        Some(t) => self.global_id("Tenant", t),
                        None => self.raw(b"null"),
                    }
                }
                ObjectItem::Column(key, index, field) => {
                    self.raw(key);
                    self.cell(&row[*index], field)?;
                }
                ObjectItem::Children { key, plan: sub, .. } => {
                    let Nested { rows, groups, data } = nested.next()?;
                    self.raw(key);
                    self.raw(b"[");
                    if let Some(id) = row[model.id_index].as_uuid()
                        && let Some(group) = groups.get(&id)
                    {
                        for (n, &child) in group.iter().enumerate() {
                            if n > 0 {
                                self.raw(b",");
                            }
                            self.object(sub, data, &rows[child])?;
                        }
                    }
                    self.raw(b"]");
                }
                ObjectItem::Reference {
                    key,
                    column,
                    nullable,
                    plan: sub,
                } => {
                    let Nested { rows, groups, data } = nested.next()?;
                    self.raw(key);
                    let target = row[*column]
                        .as_uuid()
                        .and_then(|id| groups.get(&id))
                        .and_then(|g| g.first());
                    match target {
                        Some(&t) => self.object(sub, data, &rows[t])?,
                        // The executor fails a non-null field it cannot fill.
                        None if !nullable => return None,
                        None => self.raw(b"null"),
                    }
                }
            }
        }
        self.raw(b"}");
        Some(())
    }

    fn uuid(&mut self, id: Uuid) {
        let mut text = [0u8; 36];
        id.hyphenated().encode_lower(&mut text);
        self.buf.push(b'"');
        self.raw(&text);
        self.buf.push(b'"');
    }

    /// A column's value, as the generated field gives it.
    fn cell(&mut self, cell: &Cell, field: &ColumnField) -> Option<()> {
        if let Some(def) = field.enumeration {
            return match cell {
                Cell::Text(v) if def.has(v) => {
                    self.string(v);
                    Some(())
                }
                Cell::Null if field.nullable => {
                    self.raw(b"null");
                    Some(())
                }
                _ => None,
            };
        }
        match cell {
            Cell::Null if field.nullable => self.raw(b"null"),
            Cell::Null => return None,
            Cell::Uuid(id) => match &field.id_type {
                Some(type_name) => self.global_id(type_name, *id),
                None => self.uuid(*id),
            },
            Cell::Text(v) => self.string(v),
            Cell::Int(v) => {
                let _ = serde_json::to_writer(&mut self.buf, v);
            }
            Cell::Bool(v) => self.bool(*v),
            Cell::Json(v) => {
                if field.kind != ColumnKind::Json || (v.is_null() && !field.nullable) {
                    return None;
                }
                serde_json::to_writer(&mut self.buf, v).ok()?;
            }
            Cell::Timestamp(v) => self.string(&v.to_rfc3339()),
            Cell::Bytes(_) => return None,
        }
        Some(())
    }
}
