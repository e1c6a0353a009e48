//! Small HTML helpers of the console: escaping (every value from data or a request goes
//! through [`esc`]), the page frame (navigation, language switch, CSRF token for the script),
//! the refusal page, and the decoding of query strings and cookies.

use super::i18n::{self, t, Locale};
use super::Role;

/// The console's stylesheet and script, embedded (no build step).
pub const CSS: &str = include_str!("console.css");
/// See [`CSS`].
pub const JS: &str = include_str!("console.js");

/// Text or an attribute value made safe for HTML (`& < > " '`).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who is looking at a page: their role, language and CSRF token.
pub struct Viewer<'a> {
    /// Role of the session.
    pub role: Role,
    /// Language of the page.
    pub lang: Locale,
    /// The session's CSRF token, for the script's requests.
    pub csrf: &'a str,
}

/// A whole page: `body` is already HTML.
pub fn frame(v: Option<&Viewer<'_>>, lang: Locale, title: &str, body: &str) -> String {
    let (_, code) = i18n::other(lang);
    let mut nav = String::new();
    if let Some(v) = v {
        nav.push_str(&format!(
            "<a href=\"/console/export\">{}</a> <a href=\"/console/exports\">{}</a> ",
            esc(t(lang, "export")),
            esc(t(lang, "exports"))
        ));
        nav.push_str(&format!(
            "<a href=\"/console/documents\">{}</a> <a href=\"/console/mappings\">{}</a> ",
            esc(t(lang, "documents")),
            esc(t(lang, "mappings"))
        ));
        if v.role == Role::Admin {
            nav.push_str(&format!(
                "<a href=\"/console\">{}</a> ",
                esc(t(lang, "overview"))
            ));
            nav.push_str(&format!(
                "<a href=\"/console/audit\">{}</a> ",
                esc(t(lang, "audit"))
            ));
        }
        nav.push_str(&format!(
            "<span id=\"role\" data-role=\"{r}\">{}: {}</span> <button type=\"button\" id=\"logout\">{}</button> ",
            esc(t(lang, "role")),
            esc(t(lang, v.role.as_str())),
            esc(t(lang, "logout")),
            r = v.role.as_str()
        ));
    }
    nav.push_str(&format!(
        "<a id=\"lang\" href=\"/console/lang?to={code}\">{}</a>",
        esc(t(lang, "language"))
    ));
    let lang_attr = match lang {
        Locale::Fr => "fr",
        Locale::En => "en",
    };
    format!(
        "<!doctype html><html lang=\"{lang_attr}\"><head><meta charset=\"utf-8\"><meta name=\"csrf\" content=\"{csrf}\"><title>{title} · {app}</title><style>{CSS}</style></head><body><header><strong>{app}</strong> <nav>{nav}</nav></header><main><h1>{title}</h1>{body}</main><script>{JS}</script></body></html>",
        csrf = esc(v.map_or("", |v| v.csrf)),
        title = esc(title),
        app = esc(t(lang, "title")),
    )
}

/// The page of a refusal (403): what was refused and for which role.
pub fn refusal(v: &Viewer<'_>, what: &str) -> String {
    frame(
        Some(v),
        v.lang,
        t(v.lang, "forbidden"),
        &format!(
            "<p id=\"refused\">{} ({}: {}) — {}</p>",
            esc(t(v.lang, "forbidden_text")),
            esc(t(v.lang, "role")),
            esc(t(v.lang, v.role.as_str())),
            esc(what)
        ),
    )
}

/// `%XX` and `+` of a URL-encoded value decoded (invalid sequences kept as written).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The pairs of a query string or form body, decoded, in order (a key may repeat).
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        kv.trim()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("Société Générale"), "Société Générale");
    }

    #[test]
    fn a_page_escapes_its_title_and_shows_the_role_and_csrf() {
        let v = Viewer {
            role: Role::Accountant,
            lang: Locale::Fr,
            csrf: "abc\"<",
        };
        let page = frame(Some(&v), Locale::Fr, "<b>x</b>", "<p>body</p>");
        assert!(page.contains("<h1>&lt;b&gt;x&lt;/b&gt;</h1>"), "{page}");
        assert!(page.contains("content=\"abc&quot;&lt;\""), "{page}");
        assert!(page.contains("data-role=\"accountant\""));
        assert!(page.contains("<p>body</p>"));
        assert!(
            !page.contains("/console/audit"),
            "admin pages are not offered"
        );
        let page = refusal(&v, "<mapping>");
        assert!(page.contains("&lt;mapping&gt;") && page.contains("Accès refusé"));
    }

    #[test]
    fn queries_and_cookies_are_decoded() {
        assert_eq!(
            pairs("target=sales-fec&x=F2026%2D0001&x=a+b&bad=%zz&end=%4"),
            vec![
                ("target".to_owned(), "sales-fec".to_owned()),
                ("x".to_owned(), "F2026-0001".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("end".to_owned(), "%4".to_owned()),
            ]
        );
        assert_eq!(url_decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(
            cookie("a=1; facto_console=xyz; b=2", "facto_console"),
            Some("xyz")
        );
        assert_eq!(cookie("facto_consolex=1", "facto_console"), None);
    }
}
