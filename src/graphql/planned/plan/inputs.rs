//! Checking the inputs of a planned operation as validation and input coercion would: variable
//! definitions and values, literals, directives' conditions, and the arguments of connections,
//! single lookups and nested lists.

use super::*;

/// An input location's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InputType {
    Int,
    String,
    Id,
    Boolean,
    /// An enum: its name and members.
    Enum(&'static str, &'static [&'static str]),
    /// A connection's `orderBy` enum.
    Order(ClassId),
    /// A connection's `filter` input object.
    Filter(ClassId),
}

/// A resolved input value: literal or variable, with variables replaced.
pub(super) enum Input<'a> {
    Literal(&'a Value),
    Const(&'a ConstValue),
    Null,
}

impl<'a> Planner<'a> {
    pub(super) fn check_definitions(&mut self, operation: &'a OperationDefinition) -> Option<()> {
        let mut seen = HashSet::new();
        for def in &operation.variable_definitions {
            let def = &def.node;
            if !seen.insert(def.name.node.clone()) || !def.directives.is_empty() {
                return None;
            }
            let name = match &def.var_type.node.base {
                BaseType::Named(name) => name,
                // `[XOrderBy!]`, the one list type the planner reads.
                BaseType::List(inner) => match &inner.base {
                    BaseType::Named(name) if !inner.nullable => {
                        let InputType::Order(class) = self.input_type(name)? else {
                            return None;
                        };
                        if let Some(default) = &def.default_value {
                            order_items_of(self.surface, class, &default.node)?;
                        }
                        continue;
                    }
                    _ => return None,
                },
            };
            let ty = self.input_type(name)?;
            if let Some(default) = &def.default_value {
                check_const(self.surface, ty, &default.node)?;
            }
        }
        Some(())
    }

    /// The input type named `name`, if the planner knows it.
    /// The definition of variable `name` (`None`: not declared), which is now used.
    fn variable(&mut self, name: &Name) -> Option<&'a VariableDefinition> {
        let def = &self
            .definitions
            .iter()
            .find(|d| d.node.name.node == *name)?
            .node;
        self.used_variables.insert(name.clone());
        Some(def)
    }

    pub(super) fn input_type(&self, name: &str) -> Option<InputType> {
        Some(match name {
            "Int" => InputType::Int,
            "String" => InputType::String,
            "ID" => InputType::Id,
            "Boolean" => InputType::Boolean,
            _ => {
                if let Some(def) = crate::graphql::enums::by_name(name) {
                    return Some(InputType::Enum(def.name, def.members));
                }
                let (id, class) = self
                    .surface
                    .classes
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.filter_type == name || c.order_type == name)?;
                if class.filter_type == name {
                    InputType::Filter(id)
                } else {
                    InputType::Order(id)
                }
            }
        })
    }

    pub(super) fn type_name(&self, ty: InputType) -> &str {
        match ty {
            InputType::Int => "Int",
            InputType::String => "String",
            InputType::Id => "ID",
            InputType::Boolean => "Boolean",
            InputType::Enum(name, _) => name,
            InputType::Order(id) => &self.surface.classes[id].order_type,
            InputType::Filter(id) => &self.surface.classes[id].filter_type,
        }
    }

    /// Resolves `value` at a location of type `ty` (`non_null` when the location is `T!`):
    /// a variable must be declared with exactly that type (non-null, or with a default, where
    /// the location is non-null) and its value must coerce; a literal must have the type.
    pub(super) fn input(
        &mut self,
        value: &'a Value,
        ty: InputType,
        non_null: bool,
    ) -> Option<Input<'a>> {
        let Value::Variable(name) = value else {
            return check_literal(self, value, ty, non_null).map(|()| Input::Literal(value));
        };
        let def = self.variable(name)?;
        let declared = &def.var_type.node;
        let BaseType::Named(declared_name) = &declared.base else {
            return None;
        };
        if declared_name.as_str() != self.type_name(ty) {
            return None;
        }
        if non_null && declared.nullable && def.default_value.is_none() {
            return None;
        }
        let given = self.variables.get(name);
        let value = match (given, &def.default_value) {
            (Some(v), _) => v,
            (None, Some(default)) => &default.node,
            (None, None) => {
                return (!non_null && declared.nullable).then_some(Input::Null);
            }
        };
        if matches!(value, ConstValue::Null) {
            return (declared.nullable && !non_null).then_some(Input::Null);
        }
        check_const(self.surface, ty, value)?;
        Some(Input::Const(value))
    }

    /// Evaluates `@skip` and `@include`; `None` for any other directive or a repeated one.
    pub(super) fn included(
        &mut self,
        directives: &'a [Positioned<async_graphql::parser::types::Directive>],
    ) -> Option<bool> {
        let mut included = true;
        let mut seen = HashSet::new();
        for directive in directives {
            let directive = &directive.node;
            let name = directive.name.node.as_str();
            if !matches!(name, "skip" | "include") || !seen.insert(name) {
                return None;
            }
            let [(arg, value)] = directive.arguments.as_slice() else {
                return None;
            };
            if arg.node.as_str() != "if" {
                return None;
            }
            let condition = match self.input(&value.node, InputType::Boolean, true)? {
                Input::Literal(Value::Boolean(b)) => *b,
                Input::Const(ConstValue::Boolean(b)) => *b,
                _ => return None,
            };
            if (name == "skip") == condition {
                included = false;
            }
        }
        Some(included)
    }

    pub(super) fn id_arg(&mut self, field: &'a Field, class: ClassId) -> Option<Uuid> {
        let [(name, value)] = field.arguments.as_slice() else {
            return None;
        };
        if name.node.as_str() != "id" {
            return None;
        }
        let text = match self.input(&value.node, InputType::Id, true)? {
            Input::Literal(Value::String(s)) => s.as_str(),
            Input::Const(ConstValue::String(s)) => s.as_str(),
            _ => return None,
        };
        ids::expect(text, self.surface.classes[class].name, "id").ok()
    }

    pub(super) fn list_args(&mut self, field: &'a Field, class: ClassId) -> Option<ListArgs> {
        let mut seen = HashSet::new();
        let mut window = Window::default();
        let mut filter = Vec::new();
        let mut order = Vec::new();
        let mut cursors: [Option<&'a str>; 2] = [None, None];
        for (name, value) in &field.arguments {
            let name = name.node.as_str();
            if !seen.insert(name) {
                return None;
            }
            match name {
                "first" | "last" => {
                    let n = match self.input(&value.node, InputType::Int, false)? {
                        Input::Null => None,
                        Input::Literal(Value::Number(n)) => n.as_i64(),
                        Input::Const(ConstValue::Number(n)) => n.as_i64(),
                        _ => return None,
                    };
                    let size = match n {
                        Some(n) => Some(classes::page_size(name, n).ok()?),
                        None => None,
                    };
                    if name == "first" {
                        window.first = size;
                    } else {
                        window.last = size;
                    }
                }
                "after" | "before" => {
                    let text = match self.input(&value.node, InputType::String, false)? {
                        Input::Null => None,
                        Input::Literal(Value::String(s)) => Some(s.as_str()),
                        Input::Const(ConstValue::String(s)) => Some(s.as_str()),
                        _ => return None,
                    };
                    cursors[usize::from(name == "before")] = text;
                }
                "orderBy" => order = self.order_input(&value.node, class)?,
                "filter" => filter = self.filter(&value.node, class)?,
                _ => return None,
            }
        }
        let model = &self.surface.classes[class];
        let key = SortKey::new(
            order
                .iter()
                .map(|item| model.order.get(item.as_str()).cloned())
                .collect::<Option<Vec<_>>>()?,
        );
        // A cursor that is not one of this order: the executor answers its error.
        let [after, before] = cursors;
        window.after = match after {
            Some(t) => Some(key.parse_cursor(&model.class, t, "after").ok()?),
            None => None,
        };
        window.before = match before {
            Some(t) => Some(key.parse_cursor(&model.class, t, "before").ok()?),
            None => None,
        };
        let key_columns = key
            .columns()
            .iter()
            .map(|(c, _)| model.class.columns.iter().position(|k| k.name == *c))
            .collect::<Option<Vec<_>>>()?;
        Some(ListArgs {
            window,
            filter,
            key,
            key_columns,
        })
    }

    /// An `orderBy` argument (`[XOrderBy!]`): a literal item, a literal list of items, or a
    /// variable declared `[XOrderBy!]` (or `[XOrderBy!]!`); its items in order.
    fn order_input(&mut self, value: &'a Value, class: ClassId) -> Option<Vec<String>> {
        let model = &self.surface.classes[class];
        let item = |e: &Name| model.order.contains_key(e.as_str()).then(|| e.to_string());
        match value {
            Value::Null => Some(Vec::new()),
            Value::Enum(e) => Some(vec![item(e)?]),
            Value::List(items) => items
                .iter()
                .map(|v| match v {
                    Value::Enum(e) => item(e),
                    _ => None,
                })
                .collect(),
            Value::Variable(name) => {
                let def = self.variable(name)?;
                let declared = &def.var_type.node;
                let BaseType::List(inner) = &declared.base else {
                    return None;
                };
                match &inner.base {
                    BaseType::Named(n) if !inner.nullable && *n == model.order_type => {}
                    _ => return None,
                }
                let given = self
                    .variables
                    .get(name)
                    .or(def.default_value.as_ref().map(|d| &d.node));
                match given {
                    None | Some(ConstValue::Null) => declared.nullable.then(Vec::new),
                    Some(v) => order_items_of(self.surface, class, v),
                }
            }
            _ => None,
        }
    }

    /// A nested list's arguments: `first`, `filter` and `orderBy` only.
    pub(super) fn nested_args(
        &mut self,
        field: &'a Field,
        class: ClassId,
    ) -> Option<crate::access::NestedArgs> {
        let known = |name: &str| matches!(name, "first" | "filter" | "orderBy");
        if !field
            .arguments
            .iter()
            .all(|(name, _)| known(name.node.as_str()))
        {
            return None;
        }
        let args = self.list_args(field, class)?;
        Some(crate::access::NestedArgs {
            filter: args.filter,
            order_by: args.key,
            first: args.window.first,
        })
    }

    pub(super) fn filter(
        &mut self,
        value: &'a Value,
        class: ClassId,
    ) -> Option<Vec<(String, Cell)>> {
        let model = &self.surface.classes[class];
        let mut out = Vec::new();
        match self.input(value, InputType::Filter(class), false)? {
            Input::Null => {}
            Input::Const(ConstValue::Object(fields)) => {
                for (name, v) in fields {
                    let f = model.filter.get(name.as_str())?;
                    out.push((f.column.clone(), const_cell(f, v)?));
                }
            }
            Input::Literal(Value::Object(fields)) => {
                for (name, v) in fields {
                    let f = model.filter.get(name.as_str())?;
                    let ty = filter_input_type(f);
                    let cell = match self.input(v, ty, false)? {
                        Input::Null => Cell::Null,
                        Input::Literal(v) => literal_cell(f, v)?,
                        Input::Const(v) => const_cell(f, v)?,
                    };
                    out.push((f.column.clone(), cell));
                }
            }
            _ => return None,
        }
        Some(out)
    }
}

/// The type of a `filter` field.
pub(super) fn filter_input_type(f: &FilterField) -> InputType {
    match (f.kind, f.enumeration) {
        (_, Some(def)) => InputType::Enum(def.name, def.members),
        (ColumnKind::Uuid, None) => InputType::Id,
        (ColumnKind::Int, None) => InputType::Int,
        (ColumnKind::Bool, None) => InputType::Boolean,
        _ => InputType::String,
    }
}

pub(super) fn int_of(n: &async_graphql::Number) -> Option<i64> {
    n.as_i64().filter(|v| i32::try_from(*v).is_ok())
}

/// Checks a literal against a location type (variables inside input objects are resolved
/// where they are read).
pub(super) fn check_literal(
    planner: &Planner<'_>,
    value: &Value,
    ty: InputType,
    non_null: bool,
) -> Option<()> {
    match (ty, value) {
        (_, Value::Null) => (!non_null).then_some(()),
        (InputType::Int, Value::Number(n)) => int_of(n).map(|_| ()),
        (InputType::String | InputType::Id, Value::String(_)) => Some(()),
        (InputType::Boolean, Value::Boolean(_)) => Some(()),
        (InputType::Enum(_, members), Value::Enum(e)) => {
            members.contains(&e.as_str()).then_some(())
        }
        (InputType::Order(class), Value::Enum(e)) => planner.surface.classes[class]
            .order
            .contains_key(e.as_str())
            .then_some(()),
        (InputType::Filter(class), Value::Object(fields)) => {
            let model = &planner.surface.classes[class];
            fields
                .keys()
                .all(|k| model.filter.contains_key(k.as_str()))
                .then_some(())
        }
        _ => None,
    }
}

/// Checks a variable's value (or a default) against its type, as input coercion would.
pub(super) fn check_const(surface: &Surface, ty: InputType, value: &ConstValue) -> Option<()> {
    match (ty, value) {
        (_, ConstValue::Null) => Some(()),
        (InputType::Int, ConstValue::Number(n)) => int_of(n).map(|_| ()),
        (InputType::String | InputType::Id, ConstValue::String(_)) => Some(()),
        (InputType::Boolean, ConstValue::Boolean(_)) => Some(()),
        (InputType::Enum(_, members), ConstValue::Enum(_) | ConstValue::String(_)) => {
            members.contains(&const_text(value)?).then_some(())
        }
        (InputType::Order(class), ConstValue::Enum(_) | ConstValue::String(_)) => surface.classes
            [class]
            .order
            .contains_key(const_text(value)?)
            .then_some(()),
        (InputType::Filter(class), ConstValue::Object(fields)) => {
            let model = &surface.classes[class];
            for (k, v) in fields {
                let f = model.filter.get(k.as_str())?;
                check_const(surface, filter_input_type(f), v)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// The items of an `orderBy` variable's value: a list of members, or one member (input
/// coercion makes a list of it).
fn order_items_of(surface: &Surface, class: ClassId, value: &ConstValue) -> Option<Vec<String>> {
    let model = &surface.classes[class];
    let item = |v: &ConstValue| {
        const_text(v)
            .filter(|t| model.order.contains_key(*t))
            .map(str::to_string)
    };
    match value {
        ConstValue::List(items) => items.iter().map(item).collect(),
        ConstValue::Null => None,
        v => Some(vec![item(v)?]),
    }
}

pub(super) fn const_text(value: &ConstValue) -> Option<&str> {
    match value {
        ConstValue::Enum(e) => Some(e.as_str()),
        ConstValue::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The filter value of a checked literal.
pub(super) fn literal_cell(f: &FilterField, value: &Value) -> Option<Cell> {
    match value {
        Value::Null => Some(Cell::Null),
        Value::Number(n) => Some(Cell::Int(int_of(n)?)),
        Value::Boolean(b) => Some(Cell::Bool(*b)),
        Value::Enum(e) => Some(Cell::Text(e.to_string())),
        Value::String(s) => text_cell(f, s),
        _ => None,
    }
}

/// The filter value of a checked variable value.
pub(super) fn const_cell(f: &FilterField, value: &ConstValue) -> Option<Cell> {
    match value {
        ConstValue::Null => Some(Cell::Null),
        ConstValue::Number(n) if f.kind == ColumnKind::Int => Some(Cell::Int(int_of(n)?)),
        ConstValue::Boolean(b) if f.kind == ColumnKind::Bool => Some(Cell::Bool(*b)),
        ConstValue::Enum(e) if f.enumeration.is_some() => Some(Cell::Text(e.to_string())),
        ConstValue::String(s) if f.enumeration.is_some() => {
            let def = f.enumeration?;
            def.members
                .contains(&s.as_str())
                .then(|| Cell::Text(s.clone()))
        }
        ConstValue::String(s) => text_cell(f, s),
        _ => None,
    }
}

pub(super) fn text_cell(f: &FilterField, text: &str) -> Option<Cell> {
    match (f.kind, &f.id_type, f.enumeration) {
        (_, _, Some(_)) => None,
        (ColumnKind::Uuid, Some(type_name), _) => Some(Cell::Uuid(
            ids::expect_reference(text, type_name, "filter").ok()?,
        )),
        (ColumnKind::Uuid, None, _) => Some(Cell::Uuid(Uuid::parse_str(text).ok()?)),
        (ColumnKind::Text, None, _) => Some(Cell::Text(text.to_string())),
        _ => None,
    }
}
