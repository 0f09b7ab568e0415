//! Name conversions between SQL (snake_case) and GraphQL (camelCase / PascalCase).

/// `route_namespace` → `routeNamespace`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `route_namespace` → `RouteNamespace`.
pub fn pascal(snake: &str) -> String {
    let c = camel(snake);
    let mut chars = c.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `routeNamespace` → `route_namespace`.
pub fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for ch in camel.chars() {
        if ch.is_uppercase() {
            out.push('_');
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `ACTION_PLACEMENT` style: `actionPlacements` → `ACTION_PLACEMENTS`.
pub fn screaming(snake_name: &str) -> String {
    snake_name.to_uppercase()
}
