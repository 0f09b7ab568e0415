//! Unit tests of the parent module.

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
    let svg =
        br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#;
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
