//! Branding (`docs/tenancy.md`): colours, custom CSS and the logo of a tenant, validated before they are
//! stored.
//!
//! Custom CSS is tokenized with a real CSS parser (`cssparser`, the one Servo and Firefox use)
//! and checked against allow-lists of at-rules and functions, so obfuscation by escapes or
//! comments does not get past it. Logos are typed by their content, never by their name.

use cssparser::{Parser, ParserInput, Token};

use crate::error::{AppError, AppResult};

/// The colour fields of a branding, as (GraphQL field, column).
pub const COLOR_FIELDS: [(&str, &str); 6] = [
    ("primaryColor", "primary_color"),
    ("secondaryColor", "secondary_color"),
    ("headerBackgroundColor", "header_background_color"),
    ("headerTextColor", "header_text_color"),
    ("linkColor", "link_color"),
    ("buttonColor", "button_color"),
];

/// Longest custom CSS accepted, in characters.
pub const MAX_CSS_CHARS: usize = 10_000;
/// Deepest nesting of blocks, functions and brackets in custom CSS.
pub const MAX_CSS_NESTING: usize = 16;

/// Largest logo accepted, in bytes.
pub const MAX_LOGO_BYTES: usize = 2 * 1024 * 1024;

/// A colour as `#rgb` or `#rrggbb` (lowercased), or a clear error naming `field`.
pub fn color(field: &str, value: &str) -> AppResult<String> {
    let hex = value.trim().strip_prefix('#').unwrap_or("");
    let ok = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(AppError::input(
            field,
            format!("`{value}` is not a hex colour such as #1a2b3c"),
        ));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// At-rules custom CSS may use.
const AT_RULES: &[&str] = &[
    "media",
    "supports",
    "keyframes",
    "-webkit-keyframes",
    "font-face",
    "layer",
    "container",
];

/// Functions custom CSS may call (`url` is checked separately).
const FUNCTIONS: &[&str] = &[
    "rgb",
    "rgba",
    "hsl",
    "hsla",
    "hwb",
    "lab",
    "lch",
    "oklab",
    "oklch",
    "color-mix",
    "calc",
    "min",
    "max",
    "clamp",
    "var",
    "env",
    "linear-gradient",
    "radial-gradient",
    "conic-gradient",
    "repeating-linear-gradient",
    "repeating-radial-gradient",
    "translate",
    "translatex",
    "translatey",
    "translate3d",
    "rotate",
    "scale",
    "scalex",
    "scaley",
    "skew",
    "skewx",
    "skewy",
    "matrix",
    "cubic-bezier",
    "steps",
    "not",
    "is",
    "where",
    "has",
    "nth-child",
    "nth-of-type",
    "nth-last-child",
    "nth-last-of-type",
    "lang",
    "minmax",
    "repeat",
    "fit-content",
    "format",
    "local",
    "attr",
    "counter",
    "counters",
    "drop-shadow",
    "blur",
    "brightness",
    "contrast",
    "grayscale",
    "opacity",
    "saturate",
    "sepia",
    "invert",
    "hue-rotate",
];

/// Properties that run code or bind behaviour in some browser.
const FORBIDDEN_PROPERTIES: &[&str] = &[
    "behavior",
    "-moz-binding",
    "-o-link",
    "-o-link-source",
    "-ms-behavior",
];

fn refuse(field: &'static str, message: impl Into<String>) -> AppError {
    AppError::input(field, message)
}

/// A URL as a browser reads it (WHATWG URL parsing): leading and trailing C0 controls and
/// spaces stripped, ASCII tab, newline and carriage return removed anywhere, and a backslash
/// read as a slash. So `/<TAB>/evil.example/x` is checked as the `//evil.example/x` it becomes.
pub fn browser_url(raw: &str) -> String {
    raw.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect()
}

/// True for a URL that stays on this origin: relative, or an inline raster image. The URL is
/// first read as a browser reads it ([`browser_url`]); one that still holds a control
/// character is refused.
fn same_origin_url(raw: &str) -> bool {
    let url = browser_url(raw);
    if url.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("data:") {
        return [
            "data:image/png",
            "data:image/jpeg",
            "data:image/gif",
            "data:image/webp",
        ]
        .iter()
        .any(|p| lower.starts_with(p));
    }
    let scheme = lower.split(['/', '?', '#']).next().unwrap_or("");
    !lower.starts_with("//") && !scheme.contains(':')
}

fn check_text(text: &str, field: &'static str) -> AppResult<()> {
    let lower = text.to_ascii_lowercase();
    for bad in [
        "javascript:",
        "vbscript:",
        "expression(",
        "</style",
        "<script",
        "<!--",
        "-->",
    ] {
        if lower.contains(bad) {
            return Err(refuse(field, format!("`{bad}` is not allowed in CSS")));
        }
    }
    Ok(())
}

fn walk<'i>(parser: &mut Parser<'i, '_>, field: &'static str) -> Result<(), AppError> {
    loop {
        let token = match parser.next_including_whitespace_and_comments() {
            Ok(token) => token.clone(),
            Err(_) => return Ok(()),
        };
        let nested = match &token {
            Token::AtKeyword(name) => {
                let name = name.to_ascii_lowercase();
                if !AT_RULES.contains(&name.as_str()) {
                    return Err(refuse(
                        field,
                        format!("the at-rule `@{name}` is not allowed"),
                    ));
                }
                false
            }
            Token::Ident(name) => {
                let name = name.to_ascii_lowercase();
                check_text(&name, field)?;
                if FORBIDDEN_PROPERTIES.contains(&name.as_str()) {
                    return Err(refuse(
                        field,
                        format!("the property `{name}` is not allowed"),
                    ));
                }
                false
            }
            Token::QuotedString(text) => {
                check_text(text, field)?;
                false
            }
            Token::UnquotedUrl(url) => {
                check_text(url, field)?;
                if !same_origin_url(url) {
                    return Err(refuse(
                        field,
                        format!("url({}) points at another origin", url.escape_debug()),
                    ));
                }
                false
            }
            Token::Function(name) => {
                let name = name.to_ascii_lowercase();
                if name == "url" || name == "src" {
                    let argument = parser
                        .parse_nested_block(|p| {
                            p.expect_string().map(|s| s.to_string()).map_err(Into::into)
                        })
                        .map_err(|_: cssparser::ParseError<'_, ()>| {
                            refuse(field, "url() needs one string")
                        })?;
                    check_text(&argument, field)?;
                    if !same_origin_url(&argument) {
                        return Err(refuse(
                            field,
                            format!(
                                "url(\"{}\") points at another origin",
                                argument.escape_debug()
                            ),
                        ));
                    }
                    continue;
                }
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(refuse(
                        field,
                        format!("the function `{name}()` is not allowed"),
                    ));
                }
                true
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => true,
            Token::BadUrl(_) | Token::BadString(_) => {
                return Err(refuse(field, "the CSS is malformed"));
            }
            Token::Delim('<') => return Err(refuse(field, "`<` is not allowed in custom CSS")),
            Token::Comment(text) => {
                check_text(text, field)?;
                false
            }
            _ => false,
        };
        if nested {
            parser
                .parse_nested_block(|p| {
                    walk(p, field).map_err(|e| p.new_custom_error::<AppError, AppError>(e))
                })
                .map_err(|e| match e.kind {
                    cssparser::ParseErrorKind::Custom(err) => err,
                    _ => refuse(field, "the CSS is malformed"),
                })?;
        }
    }
}

/// Checks custom CSS; returns it unchanged when it is allowed.
pub fn custom_css(css: &str) -> AppResult<String> {
    check_css(css, "customCss")?;
    Ok(css.to_string())
}

/// Checks a stylesheet (custom CSS, or an SVG logo's `<style>` and `style` attributes), naming
/// `field` in the refusal.
fn check_css(css: &str, field: &'static str) -> AppResult<()> {
    if css.chars().count() > MAX_CSS_CHARS {
        return Err(refuse(
            field,
            format!("CSS is limited to {MAX_CSS_CHARS} characters"),
        ));
    }
    if crate::text::has_nul(css) {
        return Err(crate::text::nul_error(field));
    }
    check_text(css, field)?;
    if css.contains('\\') {
        // Escapes are how filters are dodged (`\65xpression`); plain CSS for colours and layout
        // does not need them.
        return Err(refuse(field, "escapes (`\\`) are not allowed in CSS"));
    }
    // The walk below recurses once per nested block: bound the nesting before it runs.
    if let Err(depth) = crate::nesting::css(css, MAX_CSS_NESTING) {
        return Err(refuse(
            field,
            format!("CSS nests deeper than {MAX_CSS_NESTING} levels (reached {depth})"),
        ));
    }
    let mut input = ParserInput::new(css);
    let mut parser = Parser::new(&mut input);
    walk(&mut parser, field)
}

/// The content type of a logo, decided from its bytes; refuses anything else and SVGs that
/// could run code or fetch anything ([`check_svg`]).
pub fn logo_content_type(bytes: &[u8]) -> AppResult<&'static str> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(AppError::input("file", "the logo is larger than 2 MB"));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok("image/gif");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok("image/webp");
    }
    if let Ok(text) = std::str::from_utf8(bytes)
        && is_svg(text)
    {
        check_svg(text).map_err(|message| AppError::input("file", message))?;
        return Ok("image/svg+xml");
    }
    Err(AppError::input(
        "file",
        "the logo must be a PNG, JPEG, GIF, SVG or WebP image",
    ))
}

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const MATHML_NS: &str = "http://www.w3.org/1998/Math/MathML";

/// The SVG elements a logo may use (lowercase): shapes, text, paint servers, filters,
/// structure and declarative animation. Not `script`, `foreignObject`, `iframe`, `audio`,
/// `video`, `handler`, `listener` or anything else that runs code or embeds a document.
const SVG_ELEMENTS: &[&str] = &[
    "a",
    "animate",
    "animatemotion",
    "animatetransform",
    "circle",
    "clippath",
    "defs",
    "desc",
    "ellipse",
    "feblend",
    "fecolormatrix",
    "fecomponenttransfer",
    "fecomposite",
    "feconvolvematrix",
    "fediffuselighting",
    "fedisplacementmap",
    "fedistantlight",
    "fedropshadow",
    "feflood",
    "fefunca",
    "fefuncb",
    "fefuncg",
    "fefuncr",
    "fegaussianblur",
    "feimage",
    "femerge",
    "femergenode",
    "femorphology",
    "feoffset",
    "fepointlight",
    "fespecularlighting",
    "fespotlight",
    "fetile",
    "feturbulence",
    "filter",
    "g",
    "image",
    "line",
    "lineargradient",
    "marker",
    "mask",
    "metadata",
    "mpath",
    "path",
    "pattern",
    "polygon",
    "polyline",
    "radialgradient",
    "rect",
    "set",
    "stop",
    "style",
    "svg",
    "switch",
    "symbol",
    "text",
    "textpath",
    "title",
    "tspan",
    "use",
    "view",
];

/// Elements that change another attribute over time.
const SVG_ANIMATIONS: &[&str] = &["animate", "animatemotion", "animatetransform", "set"];

/// Checks an SVG logo, parsed as XML (so character references and namespaces are read as a
/// browser reads them, not as text): it may run no code and fetch nothing.
///
/// Refused: a DTD that declares entities; processing instructions (`<?xml-stylesheet?>`);
/// elements outside [`SVG_ELEMENTS`] in the SVG namespace; any XHTML or MathML element;
/// event-handler attributes (`on…`); `xml:base`; any attribute whose value, decoded and with
/// the characters browsers ignore removed, holds `javascript:`, `vbscript:` or `data:text`;
/// links other than `#fragment` (except `<a>`: also http, https and mailto; and
/// `<image>`/`<feImage>`: also inline PNG, JPEG, GIF or WebP); `url(…)` in attributes other
/// than `url(#fragment)`; animations of `href`, of event handlers or of `style`; `<style>`
/// text and `style` attributes that fail the custom-CSS rules (so no `@import`, no remote
/// `url()`). Elements of other namespaces (editor metadata such as Inkscape's) are inert in
/// browsers and kept, with their attributes checked the same way.
pub fn check_svg(text: &str) -> Result<(), String> {
    if text.to_ascii_lowercase().contains("<!entity") {
        return Err("SVG logos may not declare entities".into());
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|err| format!("the SVG is not well-formed XML: {err}"))?;
    let root = doc.root_element();
    if !root.tag_name().name().eq_ignore_ascii_case("svg") {
        return Err("the SVG's root element must be <svg>".into());
    }
    for node in doc.descendants() {
        if node.is_pi() {
            return Err("SVG logos may not contain processing instructions".into());
        }
        if !node.is_element() {
            continue;
        }
        let local = node.tag_name().name().to_ascii_lowercase();
        match node.tag_name().namespace() {
            None | Some("" | SVG_NS) => {
                if !SVG_ELEMENTS.contains(&local.as_str()) {
                    return Err(format!("SVG logos may not contain <{local}>"));
                }
            }
            Some(XHTML_NS | MATHML_NS) => {
                return Err(format!(
                    "SVG logos may not embed HTML or MathML (<{local}>)"
                ));
            }
            Some(_) => {}
        }
        for attribute in node.attributes() {
            check_svg_attribute(&local, attribute.name(), attribute.value())?;
        }
        if SVG_ANIMATIONS.contains(&local.as_str())
            && let Some(target) = node.attribute("attributeName")
        {
            let target = target.trim().to_ascii_lowercase();
            let target = target.rsplit(':').next().unwrap_or_default();
            if target.ends_with("href") || target.starts_with("on") || target == "style" {
                return Err(format!("SVG logos may not animate `{target}`"));
            }
        }
        if local == "style" {
            let css: String = node
                .descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .collect();
            check_css(&css, "file").map_err(|err| format!("<style>: {}", err.message()))?;
        }
    }
    Ok(())
}

/// Checks one attribute (`name` is its local name, `value` already decoded) of element `local`.
fn check_svg_attribute(local: &str, name: &str, value: &str) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    if name.starts_with("on") {
        return Err(format!("SVG logos may not carry event handlers (`{name}`)"));
    }
    if name == "base" {
        return Err("SVG logos may not set `xml:base`".into());
    }
    // What a browser would read as a URL: controls and whitespace dropped, lowercase.
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    for bad in ["javascript:", "vbscript:", "data:text", "data:application"] {
        if squeezed.contains(bad) {
            return Err(format!("SVG logos may not use `{bad}` (in `{name}`)"));
        }
    }
    if name == "href" || name == "src" {
        let url = browser_url(value).to_ascii_lowercase();
        let ok = url.starts_with('#')
            || (local == "a" && link_target(&url))
            || (matches!(local, "image" | "feimage")
                && [
                    "data:image/png",
                    "data:image/jpeg",
                    "data:image/gif",
                    "data:image/webp",
                ]
                .iter()
                .any(|p| url.starts_with(p)));
        if !ok {
            return Err(format!(
                "SVG logos may only refer to their own elements (`{name}` of <{local}>)"
            ));
        }
    }
    if name == "style" {
        check_css(value, "file").map_err(|err| format!("`style`: {}", err.message()))?;
    } else if squeezed.contains("url(") {
        let only_fragments = squeezed
            .split("url(")
            .skip(1)
            .all(|rest| rest.trim_start_matches(['"', '\'']).starts_with('#'));
        if !only_fragments {
            return Err(format!(
                "SVG logos may only use url(#…) in attributes (`{name}`)"
            ));
        }
    }
    Ok(())
}

/// True for a link an `<a>` may follow: a fragment, a relative path, http, https or mailto.
fn link_target(url: &str) -> bool {
    let scheme = url.split(['/', '?', '#']).next().unwrap_or("");
    !scheme.contains(':')
        || url.starts_with("http:")
        || url.starts_with("https:")
        || url.starts_with("mailto:")
}

fn is_svg(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?xml") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case("<!doctype") {
            rest = rest.split_once('>').map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<svg")
}

#[cfg(test)]
mod tests;
