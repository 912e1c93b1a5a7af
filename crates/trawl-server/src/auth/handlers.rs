//! `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/me`, `/api/v1/users` (admin) and
//! `/api/v1/tokens`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::store::UserChange;
use super::{
    Principal, Role, User, Via, bad_request, check_name, password, role_field, set_cookie,
};
use crate::api::{ApiError, AppState};
use crate::captures::rfc3339;
use crate::catalogue::CatalogueError;

/// The organisation a login names when it names none.
const DEFAULT_ORG: &str = "default";

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| bad_request(e.body_text()))
}

fn time(ns: i64) -> String {
    rfc3339(u64::try_from(ns).unwrap_or(0))
}

fn unauthorized_login() -> ApiError {
    ApiError::unauthorized("unknown organisation, user or password")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    #[serde(default)]
    org: Option<String>,
    user: String,
    password: String,
}

/// `POST /api/v1/login`: a session cookie for a user's name and password. Every refusal is the
/// same `401` and takes about as long (a missing user's "password" is checked against a decoy
/// hash), so that it does not tell which part was wrong.
pub(crate) async fn login(
    State(st): State<AppState>,
    request: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(request)?;
    let org_name = req.org.unwrap_or_else(|| DEFAULT_ORG.to_owned());
    if let Some(wait) = st.auth.throttle.must_wait(&org_name, &req.user) {
        let secs = wait.as_secs() + 1;
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins for this user: try again in {secs} s"),
        )
        .with("retry_after", secs)
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let (org, user) = (org_name.clone(), req.user.clone());
    let candidate = st.db(move |c| c.login_candidate(&org, &user)).await?;
    let phc = candidate.as_ref().map(|(_, _, phc)| phc.clone());
    let given = req.password;
    let matches = given.len() <= password::MAX_LEN
        && st
            .hashing(move || match &phc {
                Some(phc) => password::verify(&given, phc),
                None => password::verify(&given, password::decoy()),
            })
            .await?;
    let user = match candidate {
        Some((org, user, _)) if matches && !user.disabled => (org, user),
        _ => {
            st.auth.throttle.failed(&org_name, &req.user);
            return Err(unauthorized_login());
        }
    };
    st.auth.throttle.succeeded(&org_name, &req.user);
    let ((org, user), now, limits) = (user, st.auth.clock.now_ns(), st.auth.sessions);
    let user_id = user.id;
    let cookie = st
        .db(move |c| c.create_session(org, user_id, now, limits))
        .await?;
    let org_display = st
        .db(move |c| c.organisation_name(org))
        .await?
        .unwrap_or(org_name);
    let mut response = Json(json!({
        "user": user.name,
        "org": org_display,
        "role": user.role,
    }))
    .into_response();
    let set = set_cookie(Some(&cookie), limits.max, st.scheme == "https");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// `POST /api/v1/logout`: ends the session (if the request came with one) and clears the cookie.
pub(crate) async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = st.principal(&headers).await?;
    if let (Via::Session, Some(id)) = (p.via, p.credential_id) {
        st.db(move |c| c.end_session(p.org, id)).await?;
    }
    let clear = set_cookie(None, std::time::Duration::ZERO, st.scheme == "https");
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&clear).map_err(ApiError::internal)?,
        )],
    )
        .into_response())
}

/// `GET /api/v1/me`: who the credential is.
pub(crate) async fn me(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = st.principal(&headers).await?;
    let org = p.org;
    let org_name = st.db(move |c| c.organisation_name(org)).await?;
    Ok(Json(json!({
        "user": p.user.as_ref().map(|u| &u.name),
        "org": org_name,
        "role": p.role,
        "via": p.via,
    }))
    .into_response())
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "role": u.role,
        "disabled": u.disabled,
        "created": time(u.created_ns),
    })
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no user {id}"))
}

fn number(id: &str, not_found: impl Fn(&str) -> ApiError) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| not_found(id))
}

/// `GET /api/v1/users` (admin).
pub(crate) async fn list_users(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let users = st.db(move |c| c.users(org)).await?;
    let list: Vec<Value> = users.iter().map(user_json).collect();
    Ok(Json(json!({ "users": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    name: String,
    role: String,
    password: String,
}

/// `POST /api/v1/users` (admin): `201` with the user.
pub(crate) async fn create_user(
    State(st): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<NewUser>, JsonRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let req = body(request)?;
    let name = req.name.trim().to_owned();
    check_name("name", &name, false).map_err(bad_request)?;
    let role = role_field("role", &req.role)?;
    password::check(&req.password).map_err(bad_request)?;
    let given = req.password;
    let phc = st
        .hashing(move || password::hash(&given))
        .await?
        .map_err(ApiError::internal)?;
    let created = st
        .db(move |c| match c.create_user(org, &name, role, &phc) {
            Err(CatalogueError::UserExists(name)) => Ok(Err(name)),
            r => r.map(Ok),
        })
        .await?;
    match created {
        Ok(user) => Ok((StatusCode::CREATED, Json(user_json(&user))).into_response()),
        Err(name) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("name: a user named \"{name}\" already exists in this organisation"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeUser {
    role: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
}

/// An admin may not take their own admin rights away (by demoting, disabling or deleting
/// themselves): another admin must, so that an organisation is not left without one by mistake.
fn not_oneself(p: &Principal, id: i64, what: &str) -> Result<(), ApiError> {
    if p.user_id() == Some(id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "self",
            format!("you cannot {what} yourself: another admin can"),
        ));
    }
    Ok(())
}

/// `PATCH /api/v1/users/{id}` (admin) with any of `role`, `password`, `disabled`.
pub(crate) async fn change_user(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<ChangeUser>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Admin).await?;
    let n = number(&id, user_not_found)?;
    let req = body(request)?;
    let role = req
        .role
        .as_deref()
        .map(|r| role_field("role", r))
        .transpose()?;
    if role.is_some_and(|r| r < Role::Admin) {
        not_oneself(&p, n, "demote")?;
    }
    if req.disabled == Some(true) {
        not_oneself(&p, n, "disable")?;
    }
    let password_hash = match req.password {
        Some(given) => {
            password::check(&given).map_err(bad_request)?;
            let phc = st.hashing(move || password::hash(&given)).await?;
            Some(phc.map_err(ApiError::internal)?)
        }
        None => None,
    };
    let change = UserChange {
        role,
        password_hash,
        disabled: req.disabled,
    };
    let org = p.org;
    let user = st
        .db(move |c| c.update_user(org, n, &change))
        .await?
        .ok_or_else(|| user_not_found(&id))?;
    Ok(Json(user_json(&user)).into_response())
}

/// `DELETE /api/v1/users/{id}` (admin): the user, its sessions and its API tokens.
pub(crate) async fn delete_user(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Admin).await?;
    let n = number(&id, user_not_found)?;
    not_oneself(&p, n, "delete")?;
    let org = p.org;
    if !st.db(move |c| c.delete_user(org, n)).await? {
        return Err(user_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn token_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no token {id}"))
}

/// `GET /api/v1/tokens`: an admin sees every API token of the organisation, anyone else their
/// own.
pub(crate) async fn list_tokens(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Viewer).await?;
    let (org, owner) = (p.org, p.user_id());
    let all = p.role == Role::Admin;
    let mut tokens = st
        .db(move |c| c.api_tokens(org, if all { None } else { owner }))
        .await?;
    if !all && owner.is_none() {
        // A token the organisation's admin token made for no user: it sees only itself.
        tokens.retain(|t| Some(t.id) == p.credential_id);
    }
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "role": t.role,
                "user": t.user,
                "created": time(t.created_ns),
                "last_used": t.last_used_ns.map(time),
            })
        })
        .collect();
    Ok(Json(json!({ "tokens": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    name: String,
    role: String,
}

/// `POST /api/v1/tokens`: a token for the caller's user (or, from the organisation's admin token,
/// for no user) with a role no higher than the caller's; shown only in this answer.
pub(crate) async fn create_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<NewToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Viewer).await?;
    let req = body(request)?;
    let name = req.name.trim().to_owned();
    check_name("name", &name, true).map_err(bad_request)?;
    let role = role_field("role", &req.role)?;
    p.require(role).map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role: a token cannot have more than the caller's role ({}), {role} was asked",
                p.role
            ),
        )
    })?;
    let (org, user, now) = (p.org, p.user_id(), st.auth.clock.now_ns());
    let stored_name = name.clone();
    let (id, token) = st
        .db(move |c| c.create_api_token(org, user, &stored_name, role, now))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "token": token, "name": name, "role": role })),
    )
        .into_response())
}

/// `DELETE /api/v1/tokens/{id}`: one's own token, or (admin) any of the organisation's.
pub(crate) async fn delete_token(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Viewer).await?;
    let n = number(&id, token_not_found)?;
    let own_only = p.role < Role::Admin;
    if own_only && p.user.is_none() && p.credential_id != Some(n) {
        return Err(token_not_found(&id));
    }
    let (org, owner) = (p.org, if own_only { p.user_id() } else { None });
    if !st.db(move |c| c.delete_api_token(org, n, owner)).await? {
        return Err(token_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
