//! The catalogue's users, sessions and API tokens. As everywhere in the catalogue, a query about
//! something an organisation owns has the organisation in its `WHERE` clause; the two lookups
//! by secret (a session cookie, a token) find the organisation from the secret's hash.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, params};

use super::{Principal, Role, SessionLimits, UserRef, Via};
use crate::catalogue::{Catalogue, CatalogueError, OrgId, Result};
use crate::secret;

/// Names are unique per organisation without regard to case (`Alice` is `alice`).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ns INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER
);
CREATE INDEX IF NOT EXISTS api_tokens_by_org ON api_tokens (org_id, user_id);
";

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Role> {
        let text = value.as_str()?;
        Role::parse(text).ok_or_else(|| FromSqlError::Other(format!("role {text:?}").into()))
    }
}

/// A user of an organisation (never with the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_ns: i64,
}

const USER_COLUMNS: &str = "id, name, role, disabled, created_ns";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        disabled: r.get(3)?,
        created_ns: r.get(4)?,
    })
}

/// What may change of a user; `None` leaves it.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    /// A new PHC string (see `password::hash`).
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

/// An API token as listed (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The owner's name; `None` for tokens an organisation admin token made.
    pub user: Option<String>,
    pub created_ns: i64,
    pub last_used_ns: Option<i64>,
}

// Users.
impl Catalogue {
    /// Adds a user to `org`; `UserExists` if the name is taken there.
    pub fn create_user(
        &mut self,
        org: OrgId,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User> {
        let tx = self.conn.transaction()?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE org_id = ?1 AND name = ?2)",
            params![org, name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(CatalogueError::UserExists(name.to_owned()));
        }
        let now = crate::catalogue::now_ns();
        tx.execute(
            "INSERT INTO users (org_id, name, role, password_hash, created_ns)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![org, name, role, password_hash, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(User {
            id,
            name: name.to_owned(),
            role,
            disabled: false,
            created_ns: now,
        })
    }

    /// The users of `org`, by id.
    pub fn users(&self, org: OrgId) -> Result<Vec<User>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([org], user_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn user(&self, org: OrgId, id: i64) -> Result<Option<User>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND id = ?2"),
                params![org, id],
                user_row,
            )
            .optional()?)
    }

    pub fn user_by_name(&self, org: OrgId, name: &str) -> Result<Option<User>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND name = ?2"),
                params![org, name],
                user_row,
            )
            .optional()?)
    }

    /// The user a login names, its organisation and its password hash.
    pub(crate) fn login_candidate(
        &self,
        org_name: &str,
        user_name: &str,
    ) -> Result<Option<(OrgId, User, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT u.id, u.name, u.role, u.disabled, u.created_ns, u.org_id, u.password_hash
                 FROM users u JOIN organisations o ON o.id = u.org_id
                 WHERE o.name = ?1 AND u.name = ?2",
                params![org_name, user_name],
                |r| Ok((r.get(5)?, user_row(r)?, r.get(6)?)),
            )
            .optional()?)
    }

    /// Changes a user of `org`; `None` if there is no such user. A new password or disabling
    /// ends the user's sessions.
    pub fn update_user(
        &mut self,
        org: OrgId,
        id: i64,
        change: &UserChange,
    ) -> Result<Option<User>> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE org_id = ?1 AND id = ?2)",
            params![org, id],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        if let Some(role) = change.role {
            tx.execute(
                "UPDATE users SET role = ?1 WHERE org_id = ?2 AND id = ?3",
                params![role, org, id],
            )?;
        }
        if let Some(disabled) = change.disabled {
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE org_id = ?2 AND id = ?3",
                params![disabled, org, id],
            )?;
        }
        if let Some(hash) = &change.password_hash {
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE org_id = ?2 AND id = ?3",
                params![hash, org, id],
            )?;
        }
        if change.password_hash.is_some() || change.disabled == Some(true) {
            tx.execute(
                "DELETE FROM sessions WHERE org_id = ?1 AND user_id = ?2",
                params![org, id],
            )?;
        }
        tx.commit()?;
        self.user(org, id)
    }

    /// Deletes a user of `org` with its sessions and API tokens; false if there is none.
    pub fn delete_user(&mut self, org: OrgId, id: i64) -> Result<bool> {
        let tx = self.conn.transaction()?;
        for table in ["sessions", "api_tokens"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE org_id = ?1 AND user_id = ?2"),
                params![org, id],
            )?;
        }
        let deleted = tx.execute(
            "DELETE FROM users WHERE org_id = ?1 AND id = ?2",
            params![org, id],
        )?;
        tx.commit()?;
        Ok(deleted == 1)
    }
}

// Sessions.
impl Catalogue {
    /// A new session of a user of `org`; returns the cookie's value (stored only hashed). Sessions
    /// past their limits are removed on the way.
    pub(crate) fn create_session(
        &mut self,
        org: OrgId,
        user: i64,
        now: i64,
        limits: SessionLimits,
    ) -> Result<String> {
        let cookie = secret::generate()?;
        let (idle, max) = (nanos(limits.idle), nanos(limits.max));
        self.conn.execute(
            "DELETE FROM sessions WHERE last_used_ns <= ?1 - ?2 OR created_ns <= ?1 - ?3",
            params![now, idle, max],
        )?;
        self.conn.execute(
            "INSERT INTO sessions (org_id, user_id, hash, created_ns, last_used_ns)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![org, user, secret::hash(&cookie), now],
        )?;
        Ok(cookie)
    }

    /// The principal of a session cookie at time `now`: `None` if unknown, expired (then it is
    /// removed) or its user is disabled. A use moves the session's idle limit on.
    pub(crate) fn session(
        &mut self,
        cookie: &str,
        now: i64,
        limits: SessionLimits,
    ) -> Result<Option<Principal>> {
        let found = self
            .conn
            .query_row(
                "SELECT s.id, s.org_id, s.created_ns, s.last_used_ns, u.id, u.name, u.role,
                        u.disabled
                 FROM sessions s JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
                 WHERE s.hash = ?1",
                [secret::hash(cookie)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, OrgId>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        UserRef {
                            id: r.get(4)?,
                            name: r.get(5)?,
                        },
                        r.get::<_, Role>(6)?,
                        r.get::<_, bool>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, org, created, last_used, user, role, disabled)) = found else {
            return Ok(None);
        };
        let expired = now.saturating_sub(last_used) >= nanos(limits.idle)
            || now.saturating_sub(created) >= nanos(limits.max);
        if expired || disabled {
            self.conn
                .execute("DELETE FROM sessions WHERE id = ?1", [id])?;
            return Ok(None);
        }
        if now.saturating_sub(last_used) >= nanos(limits.touch_every()) {
            self.conn.execute(
                "UPDATE sessions SET last_used_ns = ?1 WHERE id = ?2 AND org_id = ?3",
                params![now, id, org],
            )?;
        }
        Ok(Some(Principal {
            org,
            role,
            user: Some(user),
            via: Via::Session,
            credential_id: Some(id),
        }))
    }

    /// Ends a session of `org`.
    pub(crate) fn end_session(&mut self, org: OrgId, id: i64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM sessions WHERE org_id = ?1 AND id = ?2",
            params![org, id],
        )?;
        Ok(())
    }
}

// Tokens.
impl Catalogue {
    /// A new API token of `org` for `user` (or, `None`, for the organisation); returns its id
    /// and the token (stored only hashed).
    pub(crate) fn create_api_token(
        &mut self,
        org: OrgId,
        user: Option<i64>,
        name: &str,
        role: Role,
        now: i64,
    ) -> Result<(i64, String)> {
        let token = secret::generate()?;
        self.conn.execute(
            "INSERT INTO api_tokens (org_id, user_id, name, role, hash, created_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![org, user, name, role, secret::hash(&token), now],
        )?;
        Ok((self.conn.last_insert_rowid(), token))
    }

    /// The API tokens of `org`: all of them, or (`Some(user)`) that user's.
    pub fn api_tokens(&self, org: OrgId, user: Option<i64>) -> Result<Vec<ApiTokenRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.name, t.role, u.name, t.created_ns, t.last_used_ns
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id
             WHERE t.org_id = ?1 AND (?2 IS NULL OR t.user_id = ?2)
             ORDER BY t.id",
        )?;
        let rows = stmt.query_map(params![org, user], |r| {
            Ok(ApiTokenRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
                user: r.get(3)?,
                created_ns: r.get(4)?,
                last_used_ns: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes an API token of `org` (only if `owner`'s, when given); false if there is none.
    pub(crate) fn delete_api_token(
        &mut self,
        org: OrgId,
        id: i64,
        owner: Option<i64>,
    ) -> Result<bool> {
        let deleted = self.conn.execute(
            "DELETE FROM api_tokens WHERE org_id = ?1 AND id = ?2 AND (?3 IS NULL OR user_id = ?3)",
            params![org, id, owner],
        )?;
        Ok(deleted == 1)
    }

    /// The principal a bearer token acts as: an organisation admin token (admin, no user), or an
    /// API token (its role capped by its user's present role; none if the user is disabled).
    pub(crate) fn principal_by_token(
        &mut self,
        token: &str,
        now: i64,
        touch_every: std::time::Duration,
    ) -> Result<Option<Principal>> {
        if let Some(org) = self.admin_org(token)? {
            return Ok(Some(Principal {
                org,
                role: Role::Admin,
                user: None,
                via: Via::Token,
                credential_id: None,
            }));
        }
        let found = self
            .conn
            .query_row(
                "SELECT t.id, t.org_id, t.role, t.last_used_ns, t.user_id, u.id, u.name, u.role,
                        u.disabled
                 FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id
                 WHERE t.hash = ?1",
                [secret::hash(token)],
                |r| {
                    let user = match r.get::<_, Option<i64>>(5)? {
                        Some(id) => Some((
                            UserRef {
                                id,
                                name: r.get(6)?,
                            },
                            r.get::<_, Role>(7)?,
                            r.get::<_, bool>(8)?,
                        )),
                        None => None,
                    };
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, OrgId>(1)?,
                        r.get::<_, Role>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<i64>>(4)?.is_some(),
                        user,
                    ))
                },
            )
            .optional()?;
        let Some((id, org, token_role, last_used, has_owner, user)) = found else {
            return Ok(None);
        };
        let (user, role) = match user {
            Some((_, _, true)) => return Ok(None),
            Some((user, user_role, false)) => (Some(user), token_role.min(user_role)),
            None if has_owner => return Ok(None),
            None => (None, token_role),
        };
        if last_used.is_none_or(|t| now.saturating_sub(t) >= nanos(touch_every)) {
            self.conn.execute(
                "UPDATE api_tokens SET last_used_ns = ?1 WHERE id = ?2 AND org_id = ?3",
                params![now, id, org],
            )?;
        }
        Ok(Some(Principal {
            org,
            role,
            user,
            via: Via::Token,
            credential_id: Some(id),
        }))
    }
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn catalogue() -> (tempfile::TempDir, Catalogue, OrgId, OrgId) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalogue::open(&dir.path().join("c.db")).unwrap();
        let a = c.create_organisation("a").unwrap().id;
        let b = c.create_organisation("b").unwrap().id;
        (dir, c, a, b)
    }

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn sessions_expire_after_idle_time_and_at_most_after_the_limit() {
        let (_dir, mut c, org, _) = catalogue();
        let u = c.create_user(org, "alice", Role::Operator, "x").unwrap();
        let limits = SessionLimits::default();
        let t0 = 1_000 * HOUR;
        let cookie = c.create_session(org, u.id, t0, limits).unwrap();
        let p = c.session(&cookie, t0 + 11 * HOUR, limits).unwrap().unwrap();
        assert_eq!((p.org, p.role, p.via), (org, Role::Operator, Via::Session));
        // Used at 11 h: alive at 22 h, not at 11 h + 12 h.
        assert!(
            c.session(&cookie, t0 + 22 * HOUR, limits)
                .unwrap()
                .is_some()
        );
        assert!(
            c.session(&cookie, t0 + 34 * HOUR, limits)
                .unwrap()
                .is_none()
        );
        assert!(
            c.session(&cookie, t0 + 22 * HOUR, limits)
                .unwrap()
                .is_none(),
            "an expired session is gone"
        );
        // Used every 11 hours, it still ends 7 days after the login.
        let cookie = c.create_session(org, u.id, t0, limits).unwrap();
        let mut t = t0;
        while t + 11 * HOUR < t0 + 168 * HOUR {
            t += 11 * HOUR;
            assert!(c.session(&cookie, t, limits).unwrap().is_some(), "{t}");
        }
        assert!(
            c.session(&cookie, t0 + 168 * HOUR, limits)
                .unwrap()
                .is_none()
        );
        assert!(c.session("nonsense", t0, limits).unwrap().is_none());
    }

    #[test]
    fn tokens_are_capped_by_their_users_role_and_die_with_a_disabled_user() {
        let (_dir, mut c, org, other) = catalogue();
        let u = c.create_user(org, "bob", Role::Admin, "x").unwrap();
        let (id, token) = c
            .create_api_token(org, Some(u.id), "ci", Role::Operator, 0)
            .unwrap();
        let every = Duration::from_secs(60);
        assert_eq!(
            c.principal_by_token(&token, 1, every)
                .unwrap()
                .unwrap()
                .role,
            Role::Operator
        );
        c.update_user(
            org,
            u.id,
            &UserChange {
                role: Some(Role::Viewer),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.principal_by_token(&token, 1, every)
                .unwrap()
                .unwrap()
                .role,
            Role::Viewer
        );
        assert_eq!(c.api_tokens(org, None).unwrap()[0].last_used_ns, Some(1));
        c.update_user(
            org,
            u.id,
            &UserChange {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(c.principal_by_token(&token, 1, every).unwrap().is_none());
        // Another organisation neither sees nor deletes it.
        assert!(c.api_tokens(other, None).unwrap().is_empty());
        assert!(!c.delete_api_token(other, id, None).unwrap());
        assert!(c.delete_api_token(org, id, None).unwrap());
    }

    #[test]
    fn names_are_unique_per_organisation_regardless_of_case() {
        let (_dir, mut c, a, b) = catalogue();
        c.create_user(a, "Alice", Role::Viewer, "x").unwrap();
        assert!(matches!(
            c.create_user(a, "alice", Role::Viewer, "x"),
            Err(CatalogueError::UserExists(_))
        ));
        c.create_user(b, "alice", Role::Viewer, "x").unwrap();
        assert_eq!(c.login_candidate("a", "ALICE").unwrap().unwrap().0, a);
        assert!(c.user(b, 1).unwrap().is_none(), "user 1 is a's");
        assert!(!c.delete_user(b, 1).unwrap());
    }
}
