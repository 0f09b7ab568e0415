//! Depth and complexity, measured on the parsed document the executor receives: [`measure`],
//! [`check_budget`] and [`Budget`], the schema extension that applies them on every transport
//! (introspection apart, under its own bound).

use super::*;

/// What [`measure`] found in a document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measures {
    /// Deepest field nesting outside introspection.
    pub depth: usize,
    /// Fields selected outside introspection, each counted once.
    pub fields: u64,
    /// Introspection: deepest nesting, fields, list nesting and root fields.
    pub introspection: IntrospectionMeasures,
}

/// The introspection part of [`Measures`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntrospectionMeasures {
    pub depth: usize,
    pub fields: u64,
    pub lists: usize,
    pub roots: u64,
}

impl IntrospectionMeasures {
    fn merge(&mut self, other: IntrospectionMeasures) {
        self.depth = self.depth.max(other.depth);
        self.fields = self.fields.saturating_add(other.fields);
        self.lists = self.lists.max(other.lists);
        self.roots = self.roots.saturating_add(other.roots);
    }
}

/// Measures every operation of `doc` with its fragments inlined (each fragment measured once),
/// introspection apart from the rest.
pub fn measure(doc: &ExecutableDocument) -> Result<Measures, AppError> {
    let mut measuring = Measuring {
        doc,
        plain: HashMap::new(),
        inside: HashMap::new(),
        chain: Vec::new(),
    };
    let mut total = Measures::default();
    for (_, op) in doc.operations.iter() {
        let m = measuring.plain(&op.node.selection_set.node, 0)?;
        total.depth = total.depth.max(m.depth);
        total.fields = total.fields.saturating_add(m.fields);
        total.introspection.merge(m.introspection);
    }
    Ok(total)
}

/// Refuses a document over the depth, complexity or introspection bounds, or one that
/// introspects when introspection is off.
pub fn check_budget(doc: &ExecutableDocument, introspection: bool) -> Result<(), AppError> {
    let m = measure(doc)?;
    let refuse = |message: String| Err(AppError::input("query", message));
    if m.depth > MAX_DEPTH {
        return refuse(format!(
            "the query nests fields {} deep; at most {MAX_DEPTH} are allowed",
            m.depth
        ));
    }
    if m.fields > MAX_COMPLEXITY {
        return refuse(format!(
            "the query selects {} fields once fragments are expanded; at most {MAX_COMPLEXITY} \
             are allowed",
            m.fields
        ));
    }
    let i = m.introspection;
    if i.roots == 0 {
        return Ok(());
    }
    if !introspection {
        return refuse(
            "introspection is turned off on this server (FORKLIFT_INTROSPECTION)".to_string(),
        );
    }
    if i.roots > MAX_INTROSPECTION_ROOTS
        || i.depth > MAX_INTROSPECTION_DEPTH
        || i.lists > MAX_INTROSPECTION_LISTS
        || i.fields > MAX_INTROSPECTION_FIELDS
    {
        return refuse(format!(
            "the introspection is too large: {} root fields (at most {MAX_INTROSPECTION_ROOTS}), \
             depth {} (at most {MAX_INTROSPECTION_DEPTH}), {} nested lists (at most \
             {MAX_INTROSPECTION_LISTS}), {} fields (at most {MAX_INTROSPECTION_FIELDS})",
            i.roots, i.depth, i.lists, i.fields
        ));
    }
    Ok(())
}

/// Measures selection sets, memoizing fragments (once outside introspection, once inside).
struct Measuring<'a> {
    doc: &'a ExecutableDocument,
    plain: HashMap<Name, Measures>,
    inside: HashMap<Name, IntrospectionMeasures>,
    chain: Vec<Name>,
}

impl<'a> Measuring<'a> {
    /// A selection set outside introspection.
    fn plain(&mut self, set: &SelectionSet, depth: usize) -> Result<Measures, AppError> {
        if depth > MAX_DOCUMENT_NESTING + MAX_SPREAD_CHAIN {
            return Err(too_deep());
        }
        let mut total = Measures::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) if is_introspection(field.node.name.node.as_str()) => {
                    let inner = self.inside(&field.node.selection_set.node, depth + 1)?;
                    total.introspection.merge(IntrospectionMeasures {
                        depth: inner.depth + 1,
                        fields: inner.fields.saturating_add(1),
                        lists: inner.lists,
                        roots: 1,
                    });
                }
                Selection::Field(field) => {
                    let inner = self.plain(&field.node.selection_set.node, depth + 1)?;
                    total.depth = total.depth.max(inner.depth + 1);
                    total.fields = total.fields.saturating_add(inner.fields.saturating_add(1));
                    total.introspection.merge(inner.introspection);
                }
                Selection::InlineFragment(fragment) => {
                    let inner = self.plain(&fragment.node.selection_set.node, depth + 1)?;
                    total.depth = total.depth.max(inner.depth);
                    total.fields = total.fields.saturating_add(inner.fields);
                    total.introspection.merge(inner.introspection);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let inner = match self.plain.get(name) {
                        Some(m) => *m,
                        None => {
                            let Some(set) = self.enter(name)? else {
                                continue;
                            };
                            let m = self.plain(set, depth + 1);
                            self.chain.pop();
                            let m = m?;
                            self.plain.insert(name.clone(), m);
                            m
                        }
                    };
                    total.depth = total.depth.max(inner.depth);
                    total.fields = total.fields.saturating_add(inner.fields);
                    total.introspection.merge(inner.introspection);
                }
            }
        }
        Ok(total)
    }

    /// A selection set under an introspection field (`roots` stays 0).
    fn inside(
        &mut self,
        set: &SelectionSet,
        depth: usize,
    ) -> Result<IntrospectionMeasures, AppError> {
        if depth > MAX_DOCUMENT_NESTING + MAX_SPREAD_CHAIN {
            return Err(too_deep());
        }
        let mut total = IntrospectionMeasures::default();
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let inner = self.inside(&field.node.selection_set.node, depth + 1)?;
                    let list = INTROSPECTION_LISTS.contains(&field.node.name.node.as_str());
                    IntrospectionMeasures {
                        depth: inner.depth + 1,
                        fields: inner.fields.saturating_add(1),
                        lists: inner.lists + usize::from(list),
                        roots: 0,
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.inside(&fragment.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match self.inside.get(name) {
                        Some(m) => *m,
                        None => {
                            let Some(set) = self.enter(name)? else {
                                continue;
                            };
                            let m = self.inside(set, depth + 1);
                            self.chain.pop();
                            let m = m?;
                            self.inside.insert(name.clone(), m);
                            m
                        }
                    }
                }
            };
            total.merge(inner);
        }
        Ok(total)
    }

    /// The selection set of fragment `name`, entered on the spread chain; `None` for an
    /// unknown fragment or a cycle (validation reports both).
    fn enter(&mut self, name: &Name) -> Result<Option<&'a SelectionSet>, AppError> {
        if self.chain.contains(name) {
            return Ok(None);
        }
        if self.chain.len() >= MAX_SPREAD_CHAIN {
            return Err(too_deep());
        }
        let doc: &'a ExecutableDocument = self.doc;
        let Some(fragment) = doc.fragments.get(name) else {
            return Ok(None);
        };
        self.chain.push(name.clone());
        Ok(Some(&fragment.node.selection_set.node))
    }
}

/// The schema extension that applies [`check_budget`] to the document the executor is about
/// to run, on every transport, after automatic persisted queries have supplied its text.
pub struct Budget {
    /// Whether introspection is allowed (`Config::introspection`).
    pub introspection: bool,
}

impl ExtensionFactory for Budget {
    fn create(&self) -> std::sync::Arc<dyn Extension> {
        std::sync::Arc::new(BudgetExtension {
            introspection: self.introspection,
        })
    }
}

struct BudgetExtension {
    introspection: bool,
}

#[async_graphql::async_trait::async_trait]
impl Extension for BudgetExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        check_budget(&doc, self.introspection).map_err(|err| {
            let mut error = err.into_graphql().into_server_error(Default::default());
            error.locations.clear();
            error
        })?;
        Ok(doc)
    }
}
