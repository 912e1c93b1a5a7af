//! The web UI's files as the server serves them (docs/web.md): the pages, their scripts with
//! the right content types, revalidation by ETag, the Content-Security-Policy, and nothing
//! served that is not one of the embedded files. The pages themselves are tested in a browser
//! (tests/browser/).

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
};
use trawl_server::{Config, Server, Tls};

async fn server() -> (tempfile::TempDir, Server) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls = Tls::Plain;
    let server = Server::start(config).await.unwrap();
    (dir, server)
}

#[tokio::test]
async fn pages_and_assets_are_served_with_their_types_and_a_strict_policy() {
    let (_dir, server) = server().await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();

    for (path, content_type, needle) in [
        ("/", "text/html", "/ui/app.js"),
        (
            "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "text/html",
            "/ui/share.js",
        ),
        ("/ui/app.js", "text/javascript", "import"),
        ("/ui/live.js", "text/javascript", "requestAnimationFrame"),
        ("/ui/app.css", "text/css", ".lines"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert!(
            h[CONTENT_TYPE].to_str().unwrap().starts_with(content_type),
            "{path}: {:?}",
            h[CONTENT_TYPE]
        );
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h[REFERRER_POLICY], "no-referrer", "{path}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }

    // Unchanged files cost a 304.
    let r = get("/ui/app.js").await.unwrap();
    let etag = r.headers()[ETAG].clone();
    let again = client
        .get(format!("{}/ui/app.js", server.url()))
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Only the embedded files: no directory walk, no data directory.
    for path in [
        "/ui/nope.js",
        "/ui/..%2Fcatalogue.db",
        "/ui/",
        "/ui/web.rs",
        "/catalogue.db",
    ] {
        let status = get(path).await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    server.shutdown().await.unwrap();
}
