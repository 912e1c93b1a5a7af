//! The web UI's files, embedded in the binary and served as they are (docs/web.md).
//!
//! `/` is the application (`index.html`), `/s/{token}` the page a share link opens, and
//! `/ui/{file}` the scripts and style sheet they load. The pages hold no data: the scripts ask
//! the REST API with the browser's session cookie (or a share token), so these routes are
//! public. There is no build step and nothing comes from elsewhere: the files in
//! `crates/trawl-server/web/` are what the browser runs.
//!
//! Every answer carries a Content-Security-Policy that allows only this origin's scripts,
//! styles, images and connections — no inline script or style, no frames of other sites — and
//! `Referrer-Policy: no-referrer`, so a share page's token never leaves in a `Referer`.
//! Assets are revalidated by a strong ETag (a digest of their bytes): a new binary's files are
//! fetched at once, an unchanged file costs a `304`.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The page's policy: this origin only, no inline code, not framed by anyone.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'self'";

/// An embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("share.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("login.js", JS),
    asset!("devices.js", JS),
    asset!("start.js", JS),
    asset!("live.js", JS),
    asset!("captures.js", JS),
    asset!("capture.js", JS),
    asset!("reports.js", JS),
    asset!("retention.js", JS),
    asset!("users.js", JS),
    asset!("share.js", JS),
];

/// The routes of the UI, for any router state.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/s/{token}",
            get(|h: HeaderMap| async move { serve("share.html", &h) }),
        )
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, h: HeaderMap| async move {
                match ASSETS.iter().any(|a| a.name == file) {
                    true => serve(&file, &h),
                    false => not_found(),
                }
            }),
        )
}

/// Each asset's ETag, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return not_found();
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers);
    response
}

/// The headers every page and asset carries.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such file\n",
    )
        .into_response();
    secure(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_an_asset_imports_is_embedded() {
        // A module imported but not listed here would be a 404 in the browser only.
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.bytes);
            for part in text.split("from \"./").skip(1) {
                let name = part.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = String::from_utf8_lossy(asset.bytes);
            assert!(!text.contains("<style"), "{} has a <style>", asset.name);
            assert!(
                !text.contains(" style="),
                "{} has a style attribute",
                asset.name
            );
            for tag in text.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap_or_default();
                assert!(open.contains("src="), "{} has an inline script", asset.name);
            }
        }
    }
}
