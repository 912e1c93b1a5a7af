//! Users, roles, sessions, API tokens and share links end to end, against a real server in this
//! process over HTTP (docs/protocol.md, "Users, roles, sessions and share links"): logging in
//! and out with the session cookie, the CSRF header, session expiry on a clock the test moves,
//! the role table on existing routes, API tokens capped by their user's role, organisations kept
//! apart, disabled users locked out, and share links opened without an account — what they
//! download checked with tshark against the original capture.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use trawl_server::{Clock, Config, Server, Tls};

const HOUR: Duration = Duration::from_secs(3600);

struct Harness {
    _dir: tempfile::TempDir,
    server: Server,
    client: reqwest::Client,
    clock: Clock,
    /// The organisation `acme`'s admin token.
    admin: String,
}

/// Who a request is sent as.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Token(&'a str),
    /// A session cookie, with the CSRF header.
    Session(&'a str),
    /// A session cookie without the CSRF header.
    SessionNoCsrf(&'a str),
}

impl Harness {
    async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        config.tls = Tls::Plain;
        let clock = Clock::manual();
        config.clock = clock.clone();
        let server = Server::start(config).await.unwrap();
        let admin = server
            .create_organisation("acme")
            .await
            .unwrap()
            .admin_token;
        Harness {
            _dir: dir,
            server,
            client: reqwest::Client::new(),
            clock,
            admin,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn request(&self, method: Method, path: &str, who: As<'_>) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match who {
            As::Nobody => req,
            As::Token(t) => req.bearer_auth(t),
            As::Session(c) => req
                .header(header::COOKIE, format!("trawl_session={c}"))
                .header("X-Requested-With", "trawl"),
            As::SessionNoCsrf(c) => req.header(header::COOKIE, format!("trawl_session={c}")),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path, who);
        if let Some(b) = body {
            req = req.json(&b);
        }
        json_of(req.send().await.unwrap()).await
    }

    async fn get(&self, path: &str, who: As<'_>) -> (StatusCode, Value) {
        self.call(Method::GET, path, who, None).await
    }

    async fn post(&self, path: &str, who: As<'_>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, who, Some(body)).await
    }

    /// Adds a user to acme with the admin token; returns its id.
    async fn add_user(&self, name: &str, role: &str) -> i64 {
        let (status, user) = self
            .post(
                "/api/v1/users",
                As::Token(&self.admin),
                json!({"name": name, "role": role, "password": password(name)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        assert_eq!(
            (user["name"].as_str(), user["role"].as_str()),
            (Some(name), Some(role))
        );
        user["id"].as_i64().unwrap()
    }

    /// Logs in (org omitted when `None`); the answer, and the cookie's value and attributes.
    async fn login_as(
        &self,
        org: Option<&str>,
        user: &str,
        pass: &str,
    ) -> (StatusCode, Value, Option<(String, String)>) {
        let mut body = json!({"user": user, "password": pass});
        if let Some(org) = org {
            body["org"] = json!(org);
        }
        let resp = self
            .client
            .post(self.url("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let cookie = resp
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .map(|set| {
                let (pair, attributes) = set.split_once(';').unwrap_or((&set, ""));
                let value = pair.strip_prefix("trawl_session=").unwrap().to_owned();
                (value, attributes.trim().to_owned())
            });
        let (status, v) = json_of(resp).await;
        (status, v, cookie)
    }

    /// A session cookie of a user of acme with the password `password(user)`.
    async fn login(&self, user: &str) -> String {
        let (status, v, cookie) = self.login_as(Some("acme"), user, &password(user)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        cookie.expect("a cookie").0
    }

    /// Uploads a corpus capture to acme; its id.
    async fn upload(&self, rel: &str) -> i64 {
        let bytes = std::fs::read(common::corpus().join(rel)).unwrap();
        let resp = self
            .client
            .put(self.url(&format!(
                "/api/v1/upload/{}",
                rel.rsplit('/').next().unwrap()
            )))
            .bearer_auth(&self.admin)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let (status, v) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    async fn bytes(&self, path: &str) -> (StatusCode, Vec<u8>, Option<String>) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let disposition = resp
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .map(|v| v.to_str().unwrap().to_owned());
        (
            resp.status(),
            resp.bytes().await.unwrap().to_vec(),
            disposition,
        )
    }
}

fn password(user: &str) -> String {
    format!("{user}'s long password")
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

#[tokio::test]
async fn login_me_and_logout_with_the_session_cookie() {
    let h = Harness::start().await;
    h.add_user("alice", "operator").await;

    // Every refusal is the same answer, saying nothing of which part was wrong.
    let mut refusals = Vec::new();
    for (org, user, pass) in [
        ("acme", "alice", "wrong password!"),
        ("acme", "nobody", "alice's long password"),
        ("nowhere", "alice", "alice's long password"),
    ] {
        let (status, v, cookie) = h.login_as(Some(org), user, pass).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{org}/{user}");
        assert!(cookie.is_none());
        refusals.push(v);
    }
    assert_eq!(refusals[0]["error"], "unauthorized");
    assert!(refusals.iter().all(|v| *v == refusals[0]), "{refusals:?}");

    let (status, v, cookie) = h.login_as(Some("acme"), "ALICE", &password("alice")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"user": "alice", "org": "acme", "role": "operator"})
    );
    let (cookie, attributes) = cookie.unwrap();
    assert_eq!(cookie.len(), 64);
    assert_eq!(
        attributes,
        "HttpOnly; SameSite=Strict; Path=/; Max-Age=604800"
    );

    let (status, me) = h.get("/api/v1/me", As::SessionNoCsrf(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "a GET needs no CSRF header");
    assert_eq!(
        me,
        json!({"user": "alice", "org": "acme", "role": "operator", "via": "session"})
    );
    let (_, me) = h.get("/api/v1/me", As::Token(&h.admin)).await;
    assert_eq!(
        me,
        json!({"user": null, "org": "acme", "role": "admin", "via": "token"})
    );
    assert_eq!(
        h.get("/api/v1/me", As::Nobody).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logging out is an unsafe request: the CSRF header first.
    let (status, v) = h
        .call(
            Method::POST,
            "/api/v1/logout",
            As::SessionNoCsrf(&cookie),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    let resp = h
        .request(Method::POST, "/api/v1/logout", As::Session(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("trawl_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, v) = h.get("/api/v1/me", As::Session(&cookie)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );

    // Without "org", the organisation "default".
    let default = h.server.create_organisation("default").await.unwrap();
    let (status, _) = h
        .post(
            "/api/v1/users",
            As::Token(&default.admin_token),
            json!({"name": "dora", "role": "viewer", "password": password("dora")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v, _) = h.login_as(None, "dora", &password("dora")).await;
    assert_eq!(
        (status, v["org"].as_str()),
        (StatusCode::OK, Some("default"))
    );
    assert_eq!(
        h.login_as(None, "alice", &password("alice")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unsafe_requests_authenticated_by_the_cookie_need_the_csrf_header() {
    let h = Harness::start().await;
    let id = h.upload("wireshark-4.0.17/dhcp.pcap").await;
    h.add_user("olga", "operator").await;
    let cookie = h.login("olga").await;
    let tags = format!("/api/v1/captures/{id}/tags");

    let (status, v) = h
        .post(&tags, As::SessionNoCsrf(&cookie), json!({"tags": ["x"]}))
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf")),
        "{v}"
    );
    let (_, shown) = h
        .get(&format!("/api/v1/captures/{id}"), As::Session(&cookie))
        .await;
    assert_eq!(shown["tags"], json!([]), "nothing changed");

    let (status, v) = h
        .post(&tags, As::Session(&cookie), json!({"tags": ["x"]}))
        .await;
    assert_eq!((status, &v["tags"]), (StatusCode::OK, &json!(["x"])), "{v}");
    // A bearer token is not sent by a browser on its own: no header needed.
    let (status, _) = h
        .post(&tags, As::Token(&h.admin), json!({"tags": ["y"]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // An upload by the session too.
    let resp = h
        .request(Method::PUT, "/api/v1/captures", As::SessionNoCsrf(&cookie))
        .body(std::fs::read(common::corpus().join("wireshark-4.0.17/dhcp.pcap")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_end_12_hours_after_their_last_use_and_7_days_after_the_login() {
    let h = Harness::start().await;
    h.add_user("vic", "viewer").await;
    let me = |cookie: String| {
        let h = &h;
        async move { h.get("/api/v1/me", As::Session(&cookie)).await.0 }
    };

    let cookie = h.login("vic").await;
    h.clock.advance(11 * HOUR);
    assert_eq!(me(cookie.clone()).await, StatusCode::OK);
    h.clock.advance(11 * HOUR);
    assert_eq!(
        me(cookie.clone()).await,
        StatusCode::OK,
        "22 h after login, 11 h idle"
    );
    h.clock.advance(12 * HOUR);
    assert_eq!(
        me(cookie.clone()).await,
        StatusCode::UNAUTHORIZED,
        "12 h idle"
    );

    let cookie = h.login("vic").await;
    for step in 1..=15 {
        h.clock.advance(11 * HOUR);
        assert_eq!(
            me(cookie.clone()).await,
            StatusCode::OK,
            "used every 11 h, step {step}"
        );
    }
    h.clock.advance(3 * HOUR); // 168 h since the login
    assert_eq!(me(cookie.clone()).await, StatusCode::UNAUTHORIZED, "7 days");
}

#[tokio::test]
async fn session_limits_come_from_the_config() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls = Tls::Plain;
    config.sessions = trawl_server::SessionLimits {
        idle: Duration::from_secs(60),
        max: Duration::from_secs(600),
    };
    let clock = Clock::manual();
    config.clock = clock.clone();
    let server = Server::start(config).await.unwrap();
    let admin = server
        .create_organisation("acme")
        .await
        .unwrap()
        .admin_token;
    let h = Harness {
        _dir: dir,
        server,
        client: reqwest::Client::new(),
        clock,
        admin,
    };
    h.add_user("vic", "viewer").await;
    let (_, _, cookie) = h.login_as(Some("acme"), "vic", &password("vic")).await;
    let (cookie, attributes) = cookie.unwrap();
    assert!(attributes.contains("Max-Age=600"), "{attributes}");
    h.clock.advance(Duration::from_secs(59));
    assert_eq!(
        h.get("/api/v1/me", As::Session(&cookie)).await.0,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(
        h.get("/api/v1/me", As::Session(&cookie)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A representative route of each role, as (method, path, body): what each role gets.
#[tokio::test]
async fn existing_routes_answer_by_role() {
    let h = Harness::start().await;
    let id = h.upload("wireshark-4.0.17/dhcp.pcap").await;
    let (status, device) = h
        .post("/api/v1/enrollment-tokens", As::Token(&h.admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h
        .post(
            "/api/v1/enroll",
            As::Nobody,
            json!({"token": device["token"], "name": "gw",
                   "interfaces": [{"name": "eth0", "link_type": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (name, role) in [("vera", "viewer"), ("otto", "operator"), ("ada", "admin")] {
        h.add_user(name, role).await;
    }
    let cookies = [
        h.login("vera").await,
        h.login("otto").await,
        h.login("ada").await,
    ];

    let job = json!({"devices": ["gw"], "filter": "udp", "duration": 60});
    let capture = format!("/api/v1/captures/{id}");
    let routes: Vec<(Method, String, Option<Value>, usize)> = vec![
        // (route, the lowest role that may: 0 viewer, 1 operator, 2 admin)
        (Method::GET, "/api/v1/devices".into(), None, 0),
        (Method::GET, "/metrics".into(), None, 0),
        (Method::GET, "/api/v1/retention".into(), None, 0),
        (Method::GET, "/api/v1/captures".into(), None, 0),
        (Method::GET, format!("{capture}/pcapng"), None, 0),
        (Method::GET, "/api/v1/jobs".into(), None, 0),
        (
            Method::POST,
            "/api/v1/compile".into(),
            Some(json!({"expression": "udp", "link_type": 1})),
            0,
        ),
        (Method::POST, "/api/v1/jobs".into(), Some(job), 1),
        (
            Method::POST,
            format!("{capture}/tags"),
            Some(json!({"tags": ["t"]})),
            1,
        ),
        (
            Method::PUT,
            format!("{capture}/notes"),
            Some(json!({"notes": "n"})),
            1,
        ),
        (
            Method::POST,
            "/api/v1/enrollment-tokens".into(),
            Some(json!({})),
            2,
        ),
        (
            Method::PUT,
            "/api/v1/retention".into(),
            Some(json!({"max_age_secs": 86400, "max_bytes": null})),
            2,
        ),
        (Method::GET, "/api/v1/users".into(), None, 2),
    ];
    for (method, path, body, lowest) in &routes {
        let (status, v) = h.call(method.clone(), path, As::Nobody, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} anonymous: {v}"
        );
        for (role, cookie) in cookies.iter().enumerate() {
            let (status, v) = h
                .call(method.clone(), path, As::Session(cookie), body.clone())
                .await;
            if role < *lowest {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {role}: {v}"
                );
                assert_eq!(v["error"], "forbidden");
            } else {
                assert!(
                    status.is_success(),
                    "{method} {path} as role {role}: {status} {v}"
                );
            }
        }
    }
    // Deleting a capture is the admin's.
    let (status, _) = h
        .call(Method::DELETE, &capture, As::Session(&cookies[1]), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(Method::DELETE, &capture, As::Session(&cookies[2]), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn api_tokens_never_act_above_their_users_role() {
    let h = Harness::start().await;
    let id = h.upload("wireshark-4.0.17/dhcp.pcap").await;
    let alice = h.add_user("alice", "operator").await;
    h.add_user("bob", "operator").await;
    let cookie = h.login("alice").await;
    let tags = format!("/api/v1/captures/{id}/tags");

    let (status, v) = h
        .post(
            "/api/v1/tokens",
            As::Session(&cookie),
            json!({"name": "ci", "role": "admin"}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    let (status, v) = h
        .post(
            "/api/v1/tokens",
            As::Session(&cookie),
            json!({"name": "ci", "role": "superuser"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().starts_with("role:"), "{v}");

    let mut tokens = Vec::new();
    for role in ["viewer", "operator"] {
        let (status, v) = h
            .post(
                "/api/v1/tokens",
                As::Session(&cookie),
                json!({"name": role, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["role"], role);
        tokens.push((
            v["id"].as_i64().unwrap(),
            v["token"].as_str().unwrap().to_owned(),
        ));
    }
    let (viewer, operator) = (&tokens[0].1, &tokens[1].1);
    assert_eq!(
        h.get("/api/v1/captures", As::Token(viewer)).await.0,
        StatusCode::OK
    );
    let (status, v) = h
        .post(&tags, As::Token(viewer), json!({"tags": ["a"]}))
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        h.post(&tags, As::Token(operator), json!({"tags": ["a"]}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, me) = h.get("/api/v1/me", As::Token(operator)).await;
    assert_eq!(
        me,
        json!({"user": "alice", "org": "acme", "role": "operator", "via": "token"})
    );

    // Alice becomes a viewer: her operator token can no longer do an operator's work.
    let (status, _) = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{alice}"),
            As::Token(&h.admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .post(&tags, As::Token(operator), json!({"tags": ["b"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Listing: one's own; the admin sees all. Deleting: one's own, or the admin.
    let bob = h.login("bob").await;
    let (_, bobs) = h
        .post(
            "/api/v1/tokens",
            As::Session(&bob),
            json!({"name": "bob's", "role": "viewer"}),
        )
        .await;
    let (_, mine) = h.get("/api/v1/tokens", As::Session(&cookie)).await;
    let names: Vec<&str> = mine["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["viewer", "operator"]);
    assert_eq!(mine["tokens"][1]["user"], "alice");
    assert!(mine["tokens"][1]["last_used"].is_string(), "{mine}");
    assert!(
        mine["tokens"][0].get("token").is_none(),
        "never shown again"
    );
    let (_, all) = h.get("/api/v1/tokens", As::Token(&h.admin)).await;
    assert_eq!(all["tokens"].as_array().unwrap().len(), 3);
    let bobs_path = format!("/api/v1/tokens/{}", bobs["id"]);
    let (status, _) = h
        .call(Method::DELETE, &bobs_path, As::Session(&cookie), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not alice's");
    let (status, _) = h
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", tokens[0].0),
            As::Session(&cookie),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/v1/captures", As::Token(viewer)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = h
        .call(Method::DELETE, &bobs_path, As::Token(&h.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn another_organisations_captures_users_and_shares_are_not_found() {
    let h = Harness::start().await;
    let id = h.upload("wireshark-4.0.17/dhcp.pcap").await;
    let other = h
        .server
        .create_organisation("other")
        .await
        .unwrap()
        .admin_token;
    let (status, _) = h
        .post(
            "/api/v1/users",
            As::Token(&other),
            json!({"name": "eve", "role": "admin", "password": password("eve")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, cookie) = h.login_as(Some("other"), "eve", &password("eve")).await;
    assert_eq!(status, StatusCode::OK);
    let eve = cookie.unwrap().0;
    let alice = h.add_user("alice", "operator").await;
    let (_, share) = h
        .post(
            &format!("/api/v1/captures/{id}/shares"),
            As::Token(&h.admin),
            json!({}),
        )
        .await;

    let capture = format!("/api/v1/captures/{id}");
    for (method, path, body) in [
        (Method::GET, capture.clone(), None),
        (Method::GET, format!("{capture}/pcapng"), None),
        (Method::GET, format!("{capture}/shares"), None),
        (Method::POST, format!("{capture}/shares"), Some(json!({}))),
        (
            Method::DELETE,
            format!("/api/v1/shares/{}", share["id"]),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Some(json!({"disabled": true})),
        ),
        (Method::DELETE, format!("/api/v1/users/{alice}"), None),
        (Method::DELETE, capture.clone(), None),
    ] {
        let (status, v) = h.call(method.clone(), &path, As::Session(&eve), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
    }
    let (_, users) = h.get("/api/v1/users", As::Session(&eve)).await;
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        1,
        "only eve: {users}"
    );
    // All still there for acme.
    assert_eq!(h.get(&capture, As::Token(&h.admin)).await.0, StatusCode::OK);
    let (_, shares) = h
        .get(&format!("{capture}/shares"), As::Token(&h.admin))
        .await;
    assert_eq!(shares["shares"][0]["revoked"], false);
}

#[tokio::test]
async fn a_disabled_user_is_locked_out_of_sessions_tokens_and_logins() {
    let h = Harness::start().await;
    let id = h.add_user("mallory", "operator").await;
    let cookie = h.login("mallory").await;
    let (_, token) = h
        .post(
            "/api/v1/tokens",
            As::Session(&cookie),
            json!({"name": "t", "role": "viewer"}),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        h.get("/api/v1/me", As::Token(&token)).await.0,
        StatusCode::OK
    );

    let path = format!("/api/v1/users/{id}");
    let (status, v) = h
        .call(
            Method::PATCH,
            &path,
            As::Token(&h.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        (status, &v["disabled"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    assert_eq!(
        h.get("/api/v1/me", As::Session(&cookie)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.get("/api/v1/me", As::Token(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, v, cookie) = h
        .login_as(Some("acme"), "mallory", &password("mallory"))
        .await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    let (_, wrong, _) = h
        .login_as(Some("acme"), "mallory", "not the password")
        .await;
    assert_eq!(v, wrong, "a disabled user's refusal is any other's");

    let (status, _) = h
        .call(
            Method::PATCH,
            &path,
            As::Token(&h.admin),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.login("mallory").await;
}

#[tokio::test]
async fn users_are_managed_by_admins_with_clear_errors() {
    let h = Harness::start().await;
    let ada = h.add_user("ada", "admin").await;
    let vic = h.add_user("vic", "viewer").await;
    let cookie = h.login("ada").await;
    let viewer = h.login("vic").await;

    let bad = [
        (
            json!({"name": "x", "role": "viewer", "password": "short"}),
            "password:",
        ),
        (
            json!({"name": "x", "role": "boss", "password": "long enough"}),
            "role:",
        ),
        (
            json!({"name": "a b", "role": "viewer", "password": "long enough"}),
            "name:",
        ),
        (
            json!({"name": "", "role": "viewer", "password": "long enough"}),
            "name:",
        ),
    ];
    for (body, field) in bad {
        let (status, v) = h
            .post("/api/v1/users", As::Session(&cookie), body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
    let (status, v) = h
        .post(
            "/api/v1/users",
            As::Session(&cookie),
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().contains("name"), "{v}");
    let (status, v) = h
        .post(
            "/api/v1/users",
            As::Session(&cookie),
            json!({"name": "VIC", "role": "viewer", "password": "long enough"}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("exists"))
    );
    let (status, _) = h.get("/api/v1/users", As::Session(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, list) = h.get("/api/v1/users", As::Session(&cookie)).await;
    let first = &list["users"][0];
    assert_eq!(
        (first["name"].as_str(), first["disabled"].as_bool()),
        (Some("ada"), Some(false))
    );
    assert!(first["created"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("password_hash").is_none());

    // An admin cannot take away their own rights; another admin can.
    let own = format!("/api/v1/users/{ada}");
    let (status, _) = h
        .call(
            Method::PATCH,
            &own,
            As::Session(&cookie),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        h.call(Method::DELETE, &own, As::Session(&cookie), None)
            .await
            .0,
        StatusCode::CONFLICT
    );

    // A new password ends the user's sessions.
    let path = format!("/api/v1/users/{vic}");
    let (status, v) = h
        .call(
            Method::PATCH,
            &path,
            As::Session(&cookie),
            Some(json!({"password": "a new long one"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        h.get("/api/v1/me", As::Session(&viewer)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.login_as(Some("acme"), "vic", &password("vic")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.login_as(Some("acme"), "vic", "a new long one").await.0,
        StatusCode::OK
    );
    let (status, _) = h
        .call(
            Method::PATCH,
            &path,
            As::Session(&cookie),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(
        h.call(Method::DELETE, &path, As::Session(&cookie), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.call(Method::DELETE, &path, As::Session(&cookie), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.login_as(Some("acme"), "vic", "a new long one").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_for_known_and_unknown_users_alike() {
    let h = Harness::start().await;
    h.add_user("alice", "viewer").await;
    for user in ["alice", "nobody"] {
        for _ in 0..5 {
            let (status, _, _) = h.login_as(Some("acme"), user, "wrong password").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, v, _) = h.login_as(Some("acme"), user, &password(user)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{user}: {v}");
        assert_eq!(v["error"], "too_many_attempts");
    }
}

#[tokio::test]
async fn password_hashes_sessions_and_tokens_are_stored_only_hashed() {
    let h = Harness::start().await;
    h.add_user("alice", "admin").await;
    let cookie = h.login("alice").await;
    let (_, token) = h
        .post(
            "/api/v1/tokens",
            As::Session(&cookie),
            json!({"name": "t", "role": "viewer"}),
        )
        .await;
    let token = token["token"].as_str().unwrap();
    let db = rusqlite::Connection::open(h.server.data_dir().join("catalogue.db")).unwrap();
    let hash: String = db
        .query_row(
            "SELECT password_hash FROM users WHERE name = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(&password("alice")));
    let dump: Vec<String> = db
        .prepare("SELECT hash FROM sessions UNION ALL SELECT hash FROM api_tokens")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(dump.len(), 2);
    assert!(!dump.iter().any(|h| h == &cookie || h == token));
}

/// `tshark -r FILE [-Y FILTER]`'s packet count.
fn tshark_count(file: &Path, filter: Option<&str>) -> usize {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file);
    if let Some(f) = filter {
        cmd.arg("-Y").arg(f);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test]
async fn share_links_open_without_an_account_until_revoked_or_expired() {
    let h = Harness::start().await;
    let rel = "tcpdump-4.99.3/bgp-4byte-asn.pcap";
    let original = common::corpus().join(rel);
    let id = h.upload(rel).await;
    h.add_user("vic", "viewer").await;
    h.add_user("otto", "operator").await;
    let (viewer, operator) = (h.login("vic").await, h.login("otto").await);
    let shares = format!("/api/v1/captures/{id}/shares");

    let (status, _) = h.post(&shares, As::Session(&viewer), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer does not share");
    for (body, field) in [
        (json!({"expires_in": "91d"}), "expires_in:"),
        (json!({"expires_in": "soon"}), "expires_in:"),
        (json!({"filter": "tcp port"}), "filter:"),
        (json!({"filter": 80}), "filter:"),
        (json!({"expiry": "1d"}), "expiry:"),
    ] {
        let (status, v) = h.post(&shares, As::Session(&operator), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }

    let (status, whole) = h.post(&shares, As::Session(&operator), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{whole}");
    let token = whole["token"].as_str().unwrap().to_owned();
    assert_eq!(whole["url"], format!("/s/{token}"));
    assert_eq!(whole["filter"], Value::Null);
    let (status, bgp) = h
        .post(
            &shares,
            As::Session(&operator),
            json!({"filter": "tcp port 179", "expires_in": "30d"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bgp}");
    let bgp_token = bgp["token"].as_str().unwrap().to_owned();

    // Anyone with the link: what is shared, and the packets.
    let (status, meta) = h.get(&format!("/api/v1/shared/{token}"), As::Nobody).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["capture"]["packets"], 91);
    assert_eq!(meta["capture"]["name"], "bgp-4byte-asn.pcap");
    assert_eq!(meta["expires"], whole["expires"]);
    let scratch = tempfile::tempdir().unwrap();
    for (t, filter, expected) in [
        (&token, None, tshark_count(&original, None)),
        (
            &bgp_token,
            Some("tcp port 179"),
            tshark_count(&original, Some("tcp.port == 179")),
        ),
    ] {
        let (status, bytes, disposition) = h.bytes(&format!("/api/v1/shared/{t}/pcapng")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(disposition.unwrap().starts_with("attachment"), "a download");
        let file = scratch.path().join("shared.pcapng");
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(tshark_count(&file, None), expected, "{filter:?}");
    }
    assert_eq!(
        tshark_count(&original, Some("tcp.port == 179")),
        79,
        "the filter keeps a part"
    );

    // The list; read-only: a share token is no credential.
    let (_, list) = h.get(&shares, As::Session(&operator)).await;
    assert_eq!(list["shares"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["shares"][0]["url"], bgp["url"],
        "newest first, the same link"
    );
    assert_eq!(list["shares"][0]["created_by"], "otto");
    let (status, _) = h
        .get(&format!("/api/v1/captures/{id}"), As::Token(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Tampered with: any byte changed is unknown.
    let mut tampered: Vec<char> = token.chars().collect();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for bad in [tampered.as_str(), "nonsense", &token[..40]] {
        let (status, _) = h.get(&format!("/api/v1/shared/{bad}"), As::Nobody).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(
            h.bytes(&format!("/api/v1/shared/{bad}/pcapng")).await.0,
            StatusCode::NOT_FOUND
        );
    }

    // Revoked: gone at once.
    let path = format!("/api/v1/shares/{}", whole["id"]);
    let (status, _) = h
        .call(Method::DELETE, &path, As::Session(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(Method::DELETE, &path, As::Session(&operator), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("/api/v1/shared/{token}"), As::Nobody)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.bytes(&format!("/api/v1/shared/{token}/pcapng")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = h.get(&shares, As::Session(&operator)).await;
    assert_eq!(list["shares"][1]["revoked"], true);

    // Expired: 410, for the metadata and the download.
    h.clock.advance(29 * 24 * HOUR);
    assert_eq!(
        h.get(&format!("/api/v1/shared/{bgp_token}"), As::Nobody)
            .await
            .0,
        StatusCode::OK
    );
    h.clock.advance(24 * HOUR);
    let (status, v) = h
        .get(&format!("/api/v1/shared/{bgp_token}"), As::Nobody)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::GONE, Some("expired"))
    );
    assert_eq!(
        h.bytes(&format!("/api/v1/shared/{bgp_token}/pcapng"))
            .await
            .0,
        StatusCode::GONE
    );

    // A deleted capture takes its links with it.
    let (_, fresh) = h
        .post(&shares, As::Token(&h.admin), json!({"expires_in": "1h"}))
        .await;
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    assert_eq!(
        h.get(&format!("/api/v1/shared/{fresh}"), As::Nobody)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = h
        .call(
            Method::DELETE,
            &format!("/api/v1/captures/{id}"),
            As::Token(&h.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.get(&format!("/api/v1/shared/{fresh}"), As::Nobody)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
