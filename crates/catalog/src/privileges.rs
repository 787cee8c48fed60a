//! Roles and privileges as IoTDB 2.0 has them for the tree model: path privileges (READ_DATA,
//! WRITE_DATA, READ_SCHEMA, WRITE_SCHEMA) on a full path or a prefix ending in `.**`, global
//! privileges (stored on `root.**`, as IoTDB lists them), each with or without the grant option, held
//! by users directly or through roles. Kept here so every change is one committed transaction; what
//! a statement needs is decided in the server (`authz`), not here.
//!
//! Every change bumps [`Catalog::privileges_generation`], which open sessions compare on each
//! request to pick up a revoked privilege or a dropped user at once.

use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::{now_ms, Catalog, ROOT_USER};

/// One privilege (IoTDB's `PrivilegeType`, tree model and global ones; the relational ones are not
/// served).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Privilege {
    ReadData,
    WriteData,
    ReadSchema,
    WriteSchema,
    ManageUser,
    ManageRole,
    UseTrigger,
    UseUdf,
    UseCq,
    UsePipe,
    UseModel,
    ExtendTemplate,
    ManageDatabase,
    Maintain,
    System,
    Security,
    Audit,
}

impl Privilege {
    /// Every privilege, in IoTDB's order.
    pub const ALL: [Privilege; 17] = [
        Privilege::ReadData,
        Privilege::WriteData,
        Privilege::ReadSchema,
        Privilege::WriteSchema,
        Privilege::ManageUser,
        Privilege::ManageRole,
        Privilege::UseTrigger,
        Privilege::UseUdf,
        Privilege::UseCq,
        Privilege::UsePipe,
        Privilege::UseModel,
        Privilege::ExtendTemplate,
        Privilege::ManageDatabase,
        Privilege::Maintain,
        Privilege::System,
        Privilege::Security,
        Privilege::Audit,
    ];

    /// The name IoTDB prints and parses.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::ReadData => "READ_DATA",
            Privilege::WriteData => "WRITE_DATA",
            Privilege::ReadSchema => "READ_SCHEMA",
            Privilege::WriteSchema => "WRITE_SCHEMA",
            Privilege::ManageUser => "MANAGE_USER",
            Privilege::ManageRole => "MANAGE_ROLE",
            Privilege::UseTrigger => "USE_TRIGGER",
            Privilege::UseUdf => "USE_UDF",
            Privilege::UseCq => "USE_CQ",
            Privilege::UsePipe => "USE_PIPE",
            Privilege::UseModel => "USE_MODEL",
            Privilege::ExtendTemplate => "EXTEND_TEMPLATE",
            Privilege::ManageDatabase => "MANAGE_DATABASE",
            Privilege::Maintain => "MAINTAIN",
            Privilege::System => "SYSTEM",
            Privilege::Security => "SECURITY",
            Privilege::Audit => "AUDIT",
        }
    }

    /// The privilege with ordinal `ordinal` of IoTDB 2.0's `PrivilegeType`, as an IoTDB peer's
    /// privilege plans carry it: the tree model's and global privileges in [`Privilege::ALL`]'s
    /// order, with the relational ones (14 to 19, the table model's) between MAINTAIN and SYSTEM;
    /// `None` for those and unknown ordinals.
    pub fn from_iotdb_ordinal(ordinal: i32) -> Option<Privilege> {
        let index = match ordinal {
            0..=13 => ordinal,
            20..=22 => ordinal - 6,
            _ => return None,
        };
        Privilege::ALL.get(usize::try_from(index).ok()?).copied()
    }

    /// The privilege named `name` (any case).
    pub fn from_name(name: &str) -> Option<Privilege> {
        Privilege::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether the privilege applies to paths (else it is global).
    pub fn is_path_privilege(self) -> bool {
        matches!(
            self,
            Privilege::ReadData
                | Privilege::WriteData
                | Privilege::ReadSchema
                | Privilege::WriteSchema
        )
    }

    /// The privileges a name in a GRANT or REVOKE stands for: one privilege, or IoTDB's composites
    /// `READ` (READ_DATA, READ_SCHEMA), `WRITE` (WRITE_DATA, WRITE_SCHEMA) and `ALL` (every one).
    pub fn expand(name: &str) -> Option<Vec<Privilege>> {
        if name.eq_ignore_ascii_case("READ") {
            return Some(vec![Privilege::ReadData, Privilege::ReadSchema]);
        }
        if name.eq_ignore_ascii_case("WRITE") {
            return Some(vec![Privilege::WriteData, Privilege::WriteSchema]);
        }
        if name.eq_ignore_ascii_case("ALL") {
            return Some(Privilege::ALL.to_vec());
        }
        Privilege::from_name(name).map(|p| vec![p])
    }
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who holds a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    User(&'a str),
    Role(&'a str),
}

impl Holder<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Holder::User(_) => "user",
            Holder::Role(_) => "role",
        }
    }

    fn name(&self) -> &str {
        match self {
            Holder::User(name) | Holder::Role(name) => name,
        }
    }
}

/// What [`Catalog::grant`] and [`Catalog::revoke`] do to each of a holder's (privilege, path).
#[derive(Debug, Clone, Copy)]
enum GrantChange {
    /// Adds the grant; one already held keeps its grant option unless this one adds it.
    Grant {
        grant_option: bool,
    },
    Revoke,
}

/// The path global privileges are stored and listed on.
pub const GLOBAL_PATH: &str = "root.**";

/// One privilege on one path (`root.**` for a global one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub privilege: Privilege,
    pub path: String,
    pub grant_option: bool,
}

/// Everything a user may do: its own grants and those of each role it holds (role name order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub user: String,
    pub own: Vec<Grant>,
    pub roles: Vec<(String, Vec<Grant>)>,
}

impl Authority {
    /// Every grant, own and through roles.
    pub fn all_grants(&self) -> impl Iterator<Item = &Grant> {
        self.own
            .iter()
            .chain(self.roles.iter().flat_map(|(_, grants)| grants.iter()))
    }
}

impl Catalog {
    /// A number that changes whenever a user, role or grant changes; sessions reload what their
    /// user may do when it moved.
    pub fn privileges_generation(&self) -> u64 {
        self.privileges_generation.load(Ordering::Acquire)
    }

    pub(crate) fn privileges_changed(&self) {
        self.privileges_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Creates a role (same name rules as users; `root` is refused, as IoTDB does).
    pub fn create_role(&self, role: &str) -> Result<()> {
        validate_role_name(role)?;
        let inserted = self.connection().execute(
            "INSERT INTO roles (name, created_at_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            (role, now_ms()),
        )?;
        if inserted == 0 {
            return Err(Error::RoleExists(role.to_string()));
        }
        self.privileges_changed();
        tracing::info!(role, "role created");
        Ok(())
    }

    /// Drops a role, its grants, and its membership of every user.
    pub fn drop_role(&self, role: &str) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let deleted = transaction.execute("DELETE FROM roles WHERE name = ?1", [role])?;
        if deleted == 0 {
            return Err(Error::RoleNotExist(role.to_string()));
        }
        transaction.execute(
            "DELETE FROM grants WHERE holder_kind = 'role' AND holder = ?1",
            [role],
        )?;
        transaction.commit()?;
        drop(connection);
        self.privileges_changed();
        tracing::info!(role, "role dropped");
        Ok(())
    }

    /// Whether `role` exists.
    pub fn role_exists(&self, role: &str) -> Result<bool> {
        role_exists(&self.connection(), role)
    }

    /// All role names, sorted.
    pub fn list_roles(&self) -> Result<Vec<String>> {
        names(
            &self.connection(),
            "SELECT name FROM roles ORDER BY name",
            [],
        )
    }

    /// The roles `user` holds, sorted.
    pub fn roles_of_user(&self, user: &str) -> Result<Vec<String>> {
        self.related(
            Holder::User(user),
            "SELECT role FROM user_roles WHERE user = ?1 ORDER BY role",
        )
    }

    /// The users holding `role`, sorted.
    pub fn users_of_role(&self, role: &str) -> Result<Vec<String>> {
        self.related(
            Holder::Role(role),
            "SELECT user FROM user_roles WHERE role = ?1 ORDER BY user",
        )
    }

    /// The names `sql` selects for `holder` (`?1`), which must exist.
    fn related(&self, holder: Holder<'_>, sql: &str) -> Result<Vec<String>> {
        let connection = self.connection();
        check_holder(&connection, holder)?;
        names(&connection, sql, [holder.name()])
    }

    /// Gives `role` to `user`.
    pub fn grant_role(&self, role: &str, user: &str) -> Result<()> {
        self.change_role(role, user, true)
    }

    /// Takes `role` from `user`.
    pub fn revoke_role(&self, role: &str, user: &str) -> Result<()> {
        self.change_role(role, user, false)
    }

    /// Gives (`give`) or takes `role` from `user`; it is an error when there is nothing to change.
    fn change_role(&self, role: &str, user: &str, give: bool) -> Result<()> {
        let connection = self.connection();
        check_holder(&connection, Holder::User(user))?;
        check_holder(&connection, Holder::Role(role))?;
        let sql = if give {
            "INSERT INTO user_roles (user, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM user_roles WHERE user = ?1 AND role = ?2"
        };
        let changed = connection.execute(sql, (user, role))?;
        drop(connection);
        let (user, role) = (user.to_string(), role.to_string());
        if changed == 0 {
            return Err(if give {
                Error::UserHasRole { user, role }
            } else {
                Error::UserNotHasRole { user, role }
            });
        }
        self.privileges_changed();
        let what = if give { "role granted" } else { "role revoked" };
        tracing::info!(user, role, "{what}");
        Ok(())
    }

    /// Grants or revokes (`change`) each (privilege, stored path) of `holder` (which must exist;
    /// root's privileges are fixed) in one transaction, then tells open sessions their privileges
    /// changed.
    fn change_grants(
        &self,
        holder: Holder<'_>,
        grants: &[(Privilege, String)],
        change: GrantChange,
    ) -> Result<()> {
        if holder == Holder::User(ROOT_USER) {
            return Err(Error::RootPrivilegesFixed);
        }
        let mut connection = self.connection();
        check_holder(&connection, holder)?;
        let transaction = connection.transaction()?;
        for (privilege, path) in grants {
            let (kind, name, privilege) = (holder.kind(), holder.name(), privilege.name());
            match change {
                GrantChange::Grant { grant_option } => transaction.execute(
                    "INSERT INTO grants (holder_kind, holder, privilege, path, grant_option)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT DO UPDATE SET grant_option = MAX(grant_option, excluded.grant_option)",
                    (kind, name, privilege, path, i64::from(grant_option)),
                )?,
                GrantChange::Revoke => transaction.execute(
                    "DELETE FROM grants WHERE holder_kind = ?1 AND holder = ?2 AND privilege = ?3 AND path = ?4",
                    (kind, name, privilege, path),
                )?,
            };
        }
        transaction.commit()?;
        drop(connection);
        self.privileges_changed();
        let (what, grant_option) = match change {
            GrantChange::Grant { grant_option } => ("privileges granted", Some(grant_option)),
            GrantChange::Revoke => ("privileges revoked", None),
        };
        tracing::info!(
            kind = holder.kind(),
            holder = holder.name(),
            count = grants.len(),
            grant_option,
            "{what}"
        );
        Ok(())
    }

    /// Grants each privilege on each path to `holder`, in one transaction; a grant already held
    /// keeps its grant option unless this one adds it. Root's privileges are fixed.
    pub fn grant(
        &self,
        holder: Holder<'_>,
        grants: &[(Privilege, String)],
        grant_option: bool,
    ) -> Result<()> {
        self.change_grants(holder, grants, GrantChange::Grant { grant_option })
    }

    /// Removes the given grants (privilege, stored path) of `holder` in one transaction; the caller
    /// chose them from [`Catalog::grants_of`] (a REVOKE on `root.sg.**` takes every grant below).
    pub fn revoke(&self, holder: Holder<'_>, grants: &[(Privilege, String)]) -> Result<()> {
        self.change_grants(holder, grants, GrantChange::Revoke)
    }

    /// Replaces everything `holder` holds itself with `grants` (privilege, path, grant option)
    /// and, for a user, its roles with `roles` (those that exist here): how a replicated
    /// authority is applied.
    pub fn replace_authority(
        &self,
        holder: Holder<'_>,
        grants: &[(Privilege, String, bool)],
        roles: &[String],
    ) -> Result<()> {
        if holder == Holder::User(ROOT_USER) {
            return Ok(());
        }
        let mut connection = self.connection();
        check_holder(&connection, holder)?;
        let transaction = connection.transaction()?;
        transaction.execute(
            "DELETE FROM grants WHERE holder_kind = ?1 AND holder = ?2",
            (holder.kind(), holder.name()),
        )?;
        for (privilege, path, option) in grants {
            transaction.execute(
                "INSERT INTO grants (holder_kind, holder, privilege, path, grant_option)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                (
                    holder.kind(),
                    holder.name(),
                    privilege.name(),
                    path,
                    i64::from(*option),
                ),
            )?;
        }
        if let Holder::User(user) = holder {
            transaction.execute("DELETE FROM user_roles WHERE user = ?1", [user])?;
            for role in roles {
                transaction.execute(
                    "INSERT INTO user_roles (user, role) SELECT ?1, name FROM roles WHERE name = ?2
                     ON CONFLICT DO NOTHING",
                    (user, role),
                )?;
            }
        }
        transaction.commit()?;
        drop(connection);
        self.privileges_changed();
        tracing::info!(
            kind = holder.kind(),
            holder = holder.name(),
            "authority replicated"
        );
        Ok(())
    }

    /// The grants `holder` holds itself (not through roles), by privilege then path.
    pub fn grants_of(&self, holder: Holder<'_>) -> Result<Vec<Grant>> {
        let connection = self.connection();
        check_holder(&connection, holder)?;
        grants_of(&connection, holder)
    }

    /// What `user` may do, or `None` when the user does not exist (any more).
    pub fn authority(&self, user: &str) -> Result<Option<Authority>> {
        let connection = self.connection();
        if !user_exists(&connection, user)? {
            return Ok(None);
        }
        let own = grants_of(&connection, Holder::User(user))?;
        let mut roles = Vec::new();
        for role in names(
            &connection,
            "SELECT role FROM user_roles WHERE user = ?1 ORDER BY role",
            [user],
        )? {
            let grants = grants_of(&connection, Holder::Role(&role))?;
            roles.push((role, grants));
        }
        Ok(Some(Authority {
            user: user.to_string(),
            own,
            roles,
        }))
    }
}

/// Role names follow the user name rules; `root` is the administrator's and taken.
pub fn validate_role_name(role: &str) -> Result<()> {
    crate::password::validate_user_name(role).map_err(|e| match e {
        Error::InvalidUser(why) => Error::InvalidRole(why.replace("user name", "role name")),
        other => other,
    })?;
    if role == ROOT_USER {
        return Err(Error::InvalidRole(
            "Cannot create a role named root: it is the administrator's name".to_string(),
        ));
    }
    Ok(())
}

fn names<P: rusqlite::Params>(
    connection: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<String>> {
    let mut statement = connection.prepare(sql)?;
    let names = statement
        .query_map(params, |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

fn user_exists(connection: &Connection, user: &str) -> Result<bool> {
    Ok(connection
        .query_row("SELECT 1 FROM users WHERE name = ?1", [user], |_| Ok(()))
        .optional()?
        .is_some())
}

fn role_exists(connection: &Connection, role: &str) -> Result<bool> {
    Ok(connection
        .query_row("SELECT 1 FROM roles WHERE name = ?1", [role], |_| Ok(()))
        .optional()?
        .is_some())
}

fn check_holder(connection: &Connection, holder: Holder<'_>) -> Result<()> {
    match holder {
        Holder::User(user) if !user_exists(connection, user)? => {
            Err(Error::UserNotExist(user.to_string()))
        }
        Holder::Role(role) if !role_exists(connection, role)? => {
            Err(Error::RoleNotExist(role.to_string()))
        }
        _ => Ok(()),
    }
}

fn grants_of(connection: &Connection, holder: Holder<'_>) -> Result<Vec<Grant>> {
    let mut statement = connection.prepare(
        "SELECT privilege, path, grant_option FROM grants WHERE holder_kind = ?1 AND holder = ?2",
    )?;
    let rows = statement
        .query_map((holder.kind(), holder.name()), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut grants = Vec::with_capacity(rows.len());
    for (name, path, grant_option) in rows {
        // A name this duetd does not know (written by a newer one) grants nothing here.
        if let Some(privilege) = Privilege::from_name(&name) {
            grants.push(Grant {
                privilege,
                path,
                grant_option: grant_option != 0,
            });
        }
    }
    grants.sort_by(|a, b| (a.privilege, &a.path).cmp(&(b.privilege, &b.path)));
    Ok(grants)
}

/// Removes every grant of `user` (a dropped user), inside the caller's statement sequence.
pub(crate) fn forget_user(connection: &Connection, user: &str) -> Result<()> {
    connection.execute(
        "DELETE FROM grants WHERE holder_kind = 'user' AND holder = ?1",
        [user],
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tests::open_fresh;

    #[test]
    fn iotdb_ordinals_name_the_privileges_iotdb_2_0_numbers() {
        assert_eq!(Privilege::from_iotdb_ordinal(0), Some(Privilege::ReadData));
        assert_eq!(Privilege::from_iotdb_ordinal(9), Some(Privilege::UsePipe));
        assert_eq!(Privilege::from_iotdb_ordinal(13), Some(Privilege::Maintain));
        assert_eq!(
            Privilege::from_iotdb_ordinal(17),
            None,
            "SELECT: relational"
        );
        assert_eq!(Privilege::from_iotdb_ordinal(20), Some(Privilege::System));
        assert_eq!(Privilege::from_iotdb_ordinal(22), Some(Privilege::Audit));
        assert_eq!(Privilege::from_iotdb_ordinal(23), None);
        assert_eq!(Privilege::from_iotdb_ordinal(-1), None);
    }

    #[test]
    fn roles_grants_and_authority() {
        let (_dir, catalog) = open_fresh();
        catalog.create_user("alice", "alice_pw").unwrap();
        let g0 = catalog.privileges_generation();
        catalog.create_role("readers").unwrap();
        assert!(catalog.privileges_generation() > g0);
        assert!(matches!(
            catalog.create_role("readers"),
            Err(Error::RoleExists(_))
        ));
        assert!(matches!(
            catalog.create_role("root"),
            Err(Error::InvalidRole(_))
        ));
        catalog
            .grant(
                Holder::Role("readers"),
                &[(Privilege::ReadData, "root.sg.**".into())],
                false,
            )
            .unwrap();
        catalog
            .grant(
                Holder::User("alice"),
                &[(Privilege::ManageUser, GLOBAL_PATH.into())],
                true,
            )
            .unwrap();
        catalog.grant_role("readers", "alice").unwrap();
        assert!(matches!(
            catalog.grant_role("readers", "alice"),
            Err(Error::UserHasRole { .. })
        ));
        let authority = catalog.authority("alice").unwrap().unwrap();
        assert_eq!(
            authority.own,
            vec![Grant {
                privilege: Privilege::ManageUser,
                path: GLOBAL_PATH.into(),
                grant_option: true
            }]
        );
        assert_eq!(authority.roles[0].0, "readers");
        assert_eq!(authority.all_grants().count(), 2);
        assert_eq!(catalog.users_of_role("readers").unwrap(), vec!["alice"]);
        assert_eq!(catalog.roles_of_user("alice").unwrap(), vec!["readers"]);

        catalog.revoke_role("readers", "alice").unwrap();
        assert!(matches!(
            catalog.revoke_role("readers", "alice"),
            Err(Error::UserNotHasRole { .. })
        ));
        catalog
            .revoke(
                Holder::User("alice"),
                &[(Privilege::ManageUser, GLOBAL_PATH.into())],
            )
            .unwrap();
        assert!(catalog.grants_of(Holder::User("alice")).unwrap().is_empty());
        assert!(matches!(
            catalog.grant(Holder::User("root"), &[], false),
            Err(Error::RootPrivilegesFixed)
        ));

        // Dropping a role or a user takes their grants and memberships with them.
        catalog.grant_role("readers", "alice").unwrap();
        catalog.drop_role("readers").unwrap();
        assert!(catalog.roles_of_user("alice").unwrap().is_empty());
        catalog
            .grant(
                Holder::User("alice"),
                &[(Privilege::UsePipe, GLOBAL_PATH.into())],
                false,
            )
            .unwrap();
        catalog.drop_user("alice").unwrap();
        assert!(catalog.authority("alice").unwrap().is_none());
        catalog.create_user("alice", "alice_pw").unwrap();
        assert!(catalog.authority("alice").unwrap().unwrap().own.is_empty());
    }

    #[test]
    fn composite_names_expand() {
        assert_eq!(
            Privilege::expand("read").unwrap(),
            vec![Privilege::ReadData, Privilege::ReadSchema]
        );
        assert_eq!(Privilege::expand("ALL").unwrap().len(), 17);
        assert!(Privilege::expand("frobnicate").is_none());
        assert_eq!(Privilege::from_name("use_pipe"), Some(Privilege::UsePipe));
    }
}
