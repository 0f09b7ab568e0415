//! Branding (SPEC §6): colours, custom CSS and the logo of a tenant, validated before they are
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
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex() {
        assert_eq!(color("c", "#1A2b3C").ok().as_deref(), Some("#1a2b3c"));
        assert!(color("c", "#fff").is_ok());
        for bad in ["red", "#12", "#gggggg", "1a2b3c", "#1a2b3c4", "rgb(0,0,0)"] {
            assert!(color("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn harmless_css_is_kept() {
        let css = ".header { background: linear-gradient(#fff, #eee); color: rgb(10 20 30); }\n\
                   @media (max-width: 600px) { .nav a:hover { text-decoration: underline; } }\n\
                   .logo { background-image: url(\"/assets/logo.png\"); width: calc(100% - 2rem); }";
        assert_eq!(custom_css(css).ok().as_deref(), Some(css));
    }

    #[test]
    fn css_attacks_are_refused() {
        let attacks = [
            "@import url(https://evil.example/x.css);",
            "@import 'https://evil.example/x.css';",
            "body { background: url(https://evil.example/track.png); }",
            "body { background: url('//evil.example/track.png'); }",
            "body { background-image: url(\"javascript:alert(1)\"); }",
            "body { width: expression(alert(1)); }",
            "body { behavior: url(/x.htc); }",
            "body { -moz-binding: url(/x.xml#xss); }",
            "</style><script>alert(1)</script>",
            "body { color: red } <!-- --> ",
            "body { w\\69 dth: \\65 xpression(alert(1)); }",
            "@namespace svg url(http://www.w3.org/2000/svg);",
            "body { background: image-set(\"https://evil.example/a.png\" 1x); }",
            "a { background: url(data:text/html;base64,PHNjcmlwdD4=); }",
            "@charset \"utf-8\"; body{}",
            "a { content: \"javascript:alert(1)\" }",
        ];
        for css in attacks {
            assert!(custom_css(css).is_err(), "accepted: {css}");
        }
        assert!(
            custom_css(&"a{}".repeat(4000)).is_err(),
            "over 10,000 characters"
        );
    }

    #[test]
    fn logos_are_typed_by_content() {
        assert_eq!(
            logo_content_type(b"\x89PNG\r\n\x1a\n....").ok(),
            Some("image/png")
        );
        assert_eq!(
            logo_content_type(&[0xFF, 0xD8, 0xFF, 0xE0]).ok(),
            Some("image/jpeg")
        );
        assert_eq!(logo_content_type(b"GIF89a...").ok(), Some("image/gif"));
        assert_eq!(
            logo_content_type(b"RIFF\0\0\0\0WEBPVP8 ").ok(),
            Some("image/webp")
        );
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#;
        assert_eq!(logo_content_type(svg).ok(), Some("image/svg+xml"));
        assert!(logo_content_type(b"<html><body>not a png</body></html>").is_err());
        assert!(logo_content_type(br#"<svg><script>alert(1)</script></svg>"#).is_err());
        assert!(logo_content_type(br#"<svg onload="alert(1)"></svg>"#).is_err());
        assert!(logo_content_type(br#"<svg><a href="javascript:alert(1)">x</a></svg>"#).is_err());
        let big = vec![0x89u8; MAX_LOGO_BYTES + 1];
        assert!(logo_content_type(&big).is_err());
    }

    #[test]
    fn urls_are_read_as_browsers_read_them() {
        for css in [
            "a { background: url('/\t/evil.example/x.png') }",
            "a { background: url('/\u{1}/evil.example/x.png') }",
            "a { background: url(' \u{1}//evil.example/x.png') }",
            "a { background: url('ht\ttps://evil.example/x.png') }",
            "a { background: url('java\tscript:alert(1)') }",
            "a { background: url('/x\u{0}.png') }",
        ] {
            assert!(custom_css(css).is_err(), "accepted: {css:?}");
        }
        assert_eq!(browser_url(" /\t/evil\n.example\\x "), "//evil.example/x");
        assert!(custom_css("a { background: url('/assets/logo.png') }").is_ok());
    }

    #[test]
    fn svg_tricks_are_refused() {
        let svg = |body: &str| {
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{body}</svg>"#
            )
        };
        let tricks = [
            r#"<a href="&#106;avascript:alert(1)"><text>x</text></a>"#,
            r#"<a xlink:href="&#x6A;&#x61;vascript&#58;alert(1)"><text>x</text></a>"#,
            r#"<a href="java&#9;script:alert(1)"><text>x</text></a>"#,
            r#"<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>"#,
            r#"<a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a>"#,
            r#"<a><animate attributeName="xlink:href" values="https://evil.example"/></a>"#,
            r#"<use href="https://evil.example/sprite.svg#a"/>"#,
            r#"<use xlink:href="/other.svg#a"/>"#,
            r#"<image href="https://evil.example/track.png"/>"#,
            r#"<style>@import url(https://evil.example/x.css);</style>"#,
            r#"<style><![CDATA[ @import 'https://evil.example/x.css'; ]]></style>"#,
            r#"<style>rect { fill: url(https://evil.example/x.svg#p) }</style>"#,
            r#"<rect style="fill: url('https://evil.example/p')"/>"#,
            r#"<rect fill="url(https://evil.example/x.svg#g)"/>"#,
            r#"<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>"#,
            r#"<h:iframe xmlns:h="http://www.w3.org/1999/xhtml" src="https://evil.example"/>"#,
            r#"<script xmlns="">alert(1)</script>"#,
            r#"<rect onclick="alert(1)"/>"#,
            r#"<rect ONLOAD="alert(1)"/>"#,
            r##"<g xml:base="https://evil.example/"><use href="#a"/></g>"##,
            r#"<handler type="application/ecmascript">alert(1)</handler>"#,
        ];
        for body in tricks {
            let text = svg(body);
            assert!(
                logo_content_type(text.as_bytes()).is_err(),
                "accepted: {body}"
            );
        }
        let with_pi = format!(
            "<?xml version=\"1.0\"?><?xml-stylesheet href=\"https://evil.example/x.css\"?>{}",
            svg("")
        );
        assert!(logo_content_type(with_pi.as_bytes()).is_err());
        let entities = r#"<!DOCTYPE svg [<!ENTITY x "javascript:alert(1)">]><svg xmlns="http://www.w3.org/2000/svg"><a href="&x;">x</a></svg>"#;
        assert!(logo_content_type(entities.as_bytes()).is_err());

        // What real logos use is kept.
        let fine = svg(concat!(
            r##"<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>"##,
            r#"<symbol id="s"><circle r="4"/></symbol></defs>"#,
            r#"<style>.a { fill: #0b3d91; }</style>"#,
            r##"<rect class="a" fill="url(#g)" style="opacity: 0.5"/><use href="#s"/>"##,
            r#"<a href="https://acme.example/"><text>Acme</text></a>"#,
            r#"<animate attributeName="opacity" from="0" to="1" dur="1s"/>"#,
            r#"<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>"#,
        ));
        assert_eq!(
            logo_content_type(fine.as_bytes()).ok(),
            Some("image/svg+xml")
        );
        let doctype = format!(
            r#"<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">{}"#,
            svg("<rect/>")
        );
        assert_eq!(
            logo_content_type(doctype.as_bytes()).ok(),
            Some("image/svg+xml")
        );
        // Deep nesting is no problem for the parser (it does not recurse).
        let deep = svg(&format!(
            "{}{}",
            "<g>".repeat(20_000),
            "</g>".repeat(20_000)
        ));
        let _ = logo_content_type(deep.as_bytes());
    }
}
