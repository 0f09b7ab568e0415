//! Reading sheets: YAML with limits, then every semantic rule, every problem reported with its
//! `file:line:column` — all the problems of a file at once, not only the first.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_saphyr::{Budget, DuplicateKeyPolicy, Options, SnippetMode};

use super::format::{Name, NavItem, Sheet};

/// Largest sheet accepted, in bytes.
pub const MAX_SHEET_BYTES: usize = 1024 * 1024;

/// One problem in one sheet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SheetError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl std::fmt::Display for SheetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A sheet file: its name (as reported in errors) and its text.
#[derive(Clone, Debug)]
pub struct SheetFile {
    pub name: String,
    pub content: String,
}

/// A parsed sheet with its file name.
pub struct Parsed {
    pub file: String,
    pub sheet: Sheet,
}

fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = 32;
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_nodes = 50_000;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options
}

/// The YAML error's message without the location the crate appends.
fn plain_message(err: &serde_saphyr::Error) -> String {
    let rendered =
        err.render_with_options(serde_saphyr::render_options! { snippets: SnippetMode::Off });
    let first = rendered.lines().next().unwrap_or_default().to_string();
    let message = match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first,
    };
    // The crate's advice to its own users is not ours to give.
    message.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

/// Where `text` holds a NUL character, or a YAML escape that makes one (`\0`, `\x00`,
/// `\u0000`, `\U00000000`, after an odd number of backslashes): no column can store it.
fn nul_at(text: &str) -> Option<usize> {
    if let Some(i) = text.find('\0') {
        return Some(i);
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] == b'\\' {
            i += 1;
        }
        if (i - start) % 2 == 1 {
            let rest = &text[i..];
            if ["0", "x00", "u0000", "U00000000"]
                .iter()
                .any(|e| rest.starts_with(e))
            {
                return Some(i - 1);
            }
        }
    }
    None
}

/// Parses one file; a syntax or type problem stops that file (YAML cannot be read past it).
pub fn parse(file: &SheetFile) -> Result<Parsed, SheetError> {
    if file.content.len() > MAX_SHEET_BYTES {
        return Err(SheetError {
            file: file.name.clone(),
            line: 1,
            column: 1,
            message: format!("the sheet is larger than {} KiB", MAX_SHEET_BYTES / 1024),
        });
    }
    if let Some(offset) = nul_at(&file.content) {
        let before = &file.content[..offset];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .count() as u64
            + 1;
        return Err(SheetError {
            file: file.name.clone(),
            line,
            column,
            message: "a NUL character (or a YAML escape of one) is not allowed".into(),
        });
    }
    match serde_saphyr::from_str_with_options::<Sheet>(&file.content, options()) {
        Ok(sheet) => Ok(Parsed {
            file: file.name.clone(),
            sheet,
        }),
        Err(err) => {
            let (line, column) = err
                .location()
                .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
            Err(SheetError {
                file: file.name.clone(),
                line,
                column,
                message: plain_message(&err),
            })
        }
    }
}

/// What already exists in the database, for references a batch does not declare itself.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub entity_schemas: BTreeSet<String>,
    pub event_types: BTreeSet<String>,
    pub surface_types: BTreeSet<String>,
    pub custom_types: BTreeSet<String>,
    /// `application code → action keys` of the template.
    pub actions: BTreeMap<String, BTreeSet<String>>,
}

struct Checker<'a> {
    file: &'a str,
    errors: Vec<SheetError>,
}

impl Checker<'_> {
    fn at(&mut self, name: &Name, message: impl Into<String>) {
        self.errors.push(SheetError {
            file: self.file.to_string(),
            line: name.referenced.line().max(1),
            column: name.referenced.column().max(1),
            message: message.into(),
        });
    }

    fn reference(&mut self, name: &Name, known: &BTreeSet<String>, what: &str) {
        if !known.contains(&name.value) {
            self.at(name, format!("unknown {what} `{}`", name.value));
        }
    }

    fn unique<'n>(&mut self, names: impl IntoIterator<Item = &'n Name>, what: &str) {
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.value.as_str()) {
                self.at(name, format!("duplicate {what} `{}`", name.value));
            }
        }
    }

    fn slug(&mut self, name: &Name, what: &str) {
        let ok = !name.value.is_empty()
            && name.value.len() <= 63
            && name.value.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_'
            });
        if !ok {
            self.at(
                name,
                format!(
                    "{what} `{}` must be lowercase letters, digits, `-`, `_` or `.`",
                    name.value
                ),
            );
        }
    }
}

fn nav_keys(items: &[NavItem], out: &mut Vec<Name>) {
    for item in items {
        out.push(item.key.clone());
        nav_keys(&item.children, out);
    }
}

fn nav_pages<'a>(items: &'a [NavItem], out: &mut Vec<&'a Name>) {
    for item in items {
        if let Some(page) = &item.page {
            out.push(page);
        }
        nav_pages(&item.children, out);
    }
}

/// Checks a batch: every reference resolves (against the batch's own vocabulary and actions, or
/// `known`), codes and route namespaces are unique across the batch, keys unique within their
/// scope. Returns every problem found, sorted by file and position.
pub fn check(parsed: &[Parsed], known: &Known) -> Vec<SheetError> {
    // What the batch declares, on top of what exists.
    let mut known = known.clone();
    for p in parsed {
        if let Some(v) = &p.sheet.vocabulary {
            known
                .entity_schemas
                .extend(v.entity_schemas.iter().map(|s| s.key.value.clone()));
            known
                .event_types
                .extend(v.event_types.iter().map(|s| s.key.value.clone()));
            known
                .surface_types
                .extend(v.surface_types.iter().map(|s| s.key.value.clone()));
            known
                .custom_types
                .extend(v.custom_types.iter().map(|s| s.key.value.clone()));
        }
        if let Some(identity) = &p.sheet.identity {
            known.actions.insert(
                identity.code.value.clone(),
                p.sheet
                    .actions
                    .iter()
                    .map(|a| a.key.value.clone())
                    .collect(),
            );
        }
    }
    let mut errors = Vec::new();
    let mut codes: BTreeMap<String, String> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, String> = BTreeMap::new();
    let mut nav_owner: BTreeMap<String, String> = BTreeMap::new();
    for p in parsed {
        let mut c = Checker {
            file: &p.file,
            errors: Vec::new(),
        };
        let s = &p.sheet;
        match (&s.vocabulary, &s.identity) {
            (Some(_), Some(identity)) => c.at(
                &identity.code,
                "a sheet is either a vocabulary sheet or an application sheet, not both",
            ),
            (None, None) => c.errors.push(SheetError {
                file: p.file.clone(),
                line: 1,
                column: 1,
                message: "a sheet needs `identity:` (an application) or `vocabulary:`".into(),
            }),
            _ => {}
        }
        if let Some(v) = &s.vocabulary {
            c.unique(v.entity_schemas.iter().map(|x| &x.key), "entity schema");
            c.unique(v.event_types.iter().map(|x| &x.key), "event type");
            c.unique(v.surface_types.iter().map(|x| &x.key), "surface type");
            c.unique(v.template_kinds.iter().map(|x| &x.key), "template kind");
            c.unique(
                v.control_plane_applications.iter().map(|x| &x.code),
                "control-plane application",
            );
            c.unique(v.custom_types.iter().map(|x| &x.key), "custom type");
            c.unique(v.onboarding_steps.iter().map(|x| &x.key), "onboarding step");
            for step in &v.onboarding_steps {
                c.slug(&step.key, "the onboarding step key");
            }
        }
        if let Some(identity) = &s.identity {
            c.slug(&identity.code, "the application code");
            c.slug(&identity.route_namespace, "the route namespace");
            if let Some(first) = codes.insert(identity.code.value.clone(), p.file.clone()) {
                c.at(
                    &identity.code,
                    format!(
                        "the application code `{}` is also declared in {first}",
                        identity.code.value
                    ),
                );
            }
            if let Some(first) =
                namespaces.insert(identity.route_namespace.value.clone(), p.file.clone())
            {
                c.at(
                    &identity.route_namespace,
                    format!(
                        "the route namespace `{}` is also used by {first}",
                        identity.route_namespace.value
                    ),
                );
            }
        } else if s.vocabulary.is_some() {
            let stray = !s.entities.is_empty()
                || !s.actions.is_empty()
                || !s.navigation.is_empty()
                || !s.records.is_empty();
            if stray {
                c.errors.push(SheetError {
                    file: p.file.clone(),
                    line: 1,
                    column: 1,
                    message: "application configuration needs an `identity:` block".into(),
                });
            }
        }
        for entity in &s.entities {
            c.reference(entity, &known.entity_schemas, "entity schema");
        }
        c.unique(s.entities.iter(), "entity");
        c.unique(s.actions.iter().map(|a| &a.key), "action key");
        for action in &s.actions {
            if let Some(entity) = &action.entity {
                c.reference(entity, &known.entity_schemas, "entity schema");
            }
            for placement in &action.placements {
                c.reference(&placement.surface, &known.surface_types, "surface type");
            }
        }
        for placement in &s.placements {
            c.reference(&placement.surface, &known.surface_types, "surface type");
            match placement.action.value.split_once('/') {
                Some((app, key)) => {
                    let found = known
                        .actions
                        .get(app)
                        .is_some_and(|keys| keys.contains(key));
                    if !found {
                        c.at(
                            &placement.action,
                            format!(
                                "unknown action `{}` (no action `{key}` in application `{app}`)",
                                placement.action.value
                            ),
                        );
                    }
                }
                None => c.at(
                    &placement.action,
                    format!(
                        "`{}`: name an action as `application-code/action-key`",
                        placement.action.value
                    ),
                ),
            }
        }
        c.unique(s.views.iter().map(|v| &v.key), "view key");
        for view in &s.views {
            c.reference(&view.entity, &known.entity_schemas, "entity schema");
        }
        c.unique(s.notifications.iter().map(|n| &n.key), "notification key");
        for n in &s.notifications {
            c.reference(&n.event, &known.event_types, "event type");
            c.unique(n.rules.iter().map(|r| &r.key), "rule key");
        }
        c.unique(s.reports.iter().map(|r| &r.key), "report key");
        c.unique(s.portal_pages.iter().map(|pg| &pg.slug), "portal page");
        for page in &s.portal_pages {
            if let Some(surface) = &page.surface {
                c.reference(surface, &known.surface_types, "surface type");
            }
        }
        let slugs: BTreeSet<String> = s
            .portal_pages
            .iter()
            .map(|pg| pg.slug.value.clone())
            .collect();
        let mut pages = Vec::new();
        nav_pages(&s.navigation, &mut pages);
        for page in pages {
            c.reference(page, &slugs, "portal page");
        }
        let mut keys = Vec::new();
        nav_keys(&s.navigation, &mut keys);
        c.unique(keys.iter(), "navigation key");
        for key in &keys {
            if let Some(first) = nav_owner.get(&key.value).filter(|f| **f != p.file) {
                let first = first.clone();
                c.at(
                    key,
                    format!("the navigation key `{}` is also used by {first}", key.value),
                );
            } else {
                nav_owner.insert(key.value.clone(), p.file.clone());
            }
        }
        let pr = &s.presentation;
        c.unique(pr.list_layouts.iter().map(|l| &l.key), "list layout key");
        c.unique(pr.dashboards.iter().map(|d| &d.key), "dashboard key");
        c.unique(
            pr.child_collections.iter().map(|d| &d.key),
            "child collection key",
        );
        for l in &pr.list_layouts {
            c.reference(&l.entity, &known.entity_schemas, "entity schema");
        }
        for cc in &pr.child_collections {
            c.reference(&cc.parent, &known.entity_schemas, "entity schema");
            c.reference(&cc.child, &known.entity_schemas, "entity schema");
        }
        for record in &s.records {
            c.reference(&record.custom_type, &known.custom_types, "custom type");
        }
        let mut seen = HashSet::new();
        for record in &s.records {
            if !seen.insert((record.custom_type.value.as_str(), record.key.value.as_str())) {
                c.at(
                    &record.key,
                    format!(
                        "duplicate record `{}` of type `{}`",
                        record.key.value, record.custom_type.value
                    ),
                );
            }
        }
        errors.extend(c.errors);
    }
    errors.sort();
    errors
}
