//! A tenant's pages served under its prefix (`/tenants/<name>`): the console, the mapping
//! editor and their redirects and cookies are written for a daemon at the root, so the
//! deployment moves the answer under the tenant's prefix on its way out. Only the places the
//! daemon writes its own paths are touched: a redirect's `Location`, a cookie's `Path`, and in
//! an HTML page the `href="/…"` and `action="/…"` attributes and the scripts' `("/console…` and
//! `('/api/…` calls. Data shown on a page is escaped (`"` is `&quot;`), so it never matches.

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The largest page moved (a console page is paged and far smaller).
const MAX_PAGE: usize = 32 * 1024 * 1024;

/// `resp` with its own paths moved under `prefix` (`/tenants/acme`).
pub(super) async fn under(prefix: &str, resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    if let Some(moved) = parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| location(prefix, l))
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        parts.headers.insert(header::LOCATION, moved);
    }
    let cookies: Vec<HeaderValue> = parts
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            v.to_str()
                .ok()
                .map(|c| cookie(prefix, c))
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .unwrap_or_else(|| v.clone())
        })
        .collect();
    if !cookies.is_empty() {
        parts.headers.remove(header::SET_COOKIE);
        for c in cookies {
            parts.headers.append(header::SET_COOKIE, c);
        }
    }
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if !html {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = to_bytes(body, MAX_PAGE).await else {
        return (
            StatusCode::BAD_GATEWAY,
            "the tenant's page could not be read",
        )
            .into_response();
    };
    let page = page(prefix, &String::from_utf8_lossy(&bytes));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(page))
}

/// A redirect to one of the daemon's own paths, moved; another (none is made) left alone.
fn location(prefix: &str, l: &str) -> Option<String> {
    (l.starts_with('/') && !l.starts_with("//")).then(|| format!("{prefix}{l}"))
}

/// `Path=/x` of a cookie moved to `Path=<prefix>/x`.
fn cookie(prefix: &str, c: &str) -> String {
    c.split("; ")
        .map(|attr| match attr.strip_prefix("Path=/") {
            Some(rest) => format!("Path={prefix}/{rest}"),
            None => attr.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The daemon's own links and calls of an HTML page moved under `prefix`.
fn page(prefix: &str, html: &str) -> String {
    let mut out = html.to_owned();
    for open in ["href=\"", "action=\""] {
        out = out.replace(&format!("{open}/"), &format!("{open}{prefix}/"));
    }
    for call in ["(\"/console", "('/console", "(\"/api/", "('/api/"] {
        let (open, path) = call.split_at(2);
        out = out.replace(call, &format!("{open}{prefix}{path}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paths_move_under_the_prefix_and_data_does_not() {
        let p = "/tenants/acme";
        assert_eq!(
            location(p, "/console/login").as_deref(),
            Some("/tenants/acme/console/login")
        );
        assert_eq!(location(p, "https://elsewhere/x"), None);
        assert_eq!(location(p, "//elsewhere/x"), None);
        assert_eq!(
            cookie(
                p,
                "s=1; HttpOnly; SameSite=Strict; Path=/console; Max-Age=60"
            ),
            "s=1; HttpOnly; SameSite=Strict; Path=/tenants/acme/console; Max-Age=60"
        );
        let html = "<a href=\"/console/exports\">x</a><form action=\"/console/login\">\
                    <script>send(\"/console/logout\");fetch('/api/mapping/'+w)</script>\
                    <td>&quot;/console&quot; {\"n\":\"/console/x\"}</td>";
        let moved = page(p, html);
        assert!(
            moved.contains("href=\"/tenants/acme/console/exports\""),
            "{moved}"
        );
        assert!(
            moved.contains("action=\"/tenants/acme/console/login\""),
            "{moved}"
        );
        assert!(
            moved.contains("send(\"/tenants/acme/console/logout\")"),
            "{moved}"
        );
        assert!(
            moved.contains("fetch('/tenants/acme/api/mapping/'"),
            "{moved}"
        );
        assert!(
            moved.contains("&quot;/console&quot; {\"n\":\"/console/x\"}"),
            "{moved}"
        );
    }
}
