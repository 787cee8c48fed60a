//! User accounts: creation, password changes, removal and login checks. Hashing happens outside the
//! connection lock because argon2 is deliberately slow and would otherwise stall every other catalog call.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::password::{
    check_hash_format, hash_password, validate_password, validate_user_name, verify_password,
};
use crate::{now_ms, Catalog, ROOT_DEFAULT_PASSWORD, ROOT_USER};

impl Catalog {
    /// Checks a login: [`Error::UserNotExist`] for an unknown user, [`Error::WrongPassword`] for a bad
    /// password.
    /// An unknown user costs a password check all the same, so the time taken does not tell which
    /// names exist.
    pub fn authenticate(&self, user: &str, password: &str) -> Result<()> {
        let stored_hash = match self.password_hash(user) {
            Ok(hash) => hash,
            Err(Error::UserNotExist(name)) => {
                let _ = verify_password(password, unknown_user_hash());
                return Err(Error::UserNotExist(name));
            }
            Err(other) => return Err(other),
        };
        if verify_password(password, &stored_hash)? {
            Ok(())
        } else {
            Err(Error::WrongPassword)
        }
    }

    /// Creates a user after checking the name and password rules.
    pub fn create_user(&self, user: &str, password: &str) -> Result<()> {
        validate_user_name(user)?;
        let password_hash = Catalog::hash_new_password(password)?;
        self.create_user_hashed(user, &password_hash)
    }

    /// Checks a new password against the rules and hashes it (argon2: deliberately slow, so callers
    /// on an async worker run it on a blocking thread, before they take any lock).
    pub fn hash_new_password(password: &str) -> Result<String> {
        validate_password(password)?;
        hash_password(password)
    }

    /// Creates a user with a hash made by [`Catalog::hash_new_password`].
    pub fn create_user_hashed(&self, user: &str, password_hash: &str) -> Result<()> {
        validate_user_name(user)?;
        let inserted = self.connection().execute(
            "INSERT INTO users (name, password_hash, created_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            (user, password_hash, now_ms()),
        )?;
        if inserted == 0 {
            return Err(Error::UserExists(user.to_string()));
        }
        self.privileges_changed();
        tracing::info!(user, "user created");
        Ok(())
    }

    /// Replaces a user's password after checking the password rules.
    pub fn set_password(&self, user: &str, password: &str) -> Result<()> {
        let password_hash = Catalog::hash_new_password(password)?;
        self.set_password_hashed(user, &password_hash)
    }

    /// Replaces a user's password with a hash made by [`Catalog::hash_new_password`].
    pub fn set_password_hashed(&self, user: &str, password_hash: &str) -> Result<()> {
        let updated = self.connection().execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            (user, password_hash),
        )?;
        if updated == 0 {
            return Err(Error::UserNotExist(user.to_string()));
        }
        tracing::info!(user, "user password changed");
        Ok(())
    }

    /// Removes a user. The root user cannot be dropped: it is the only guaranteed way back in.
    pub fn drop_user(&self, user: &str) -> Result<()> {
        if user == ROOT_USER {
            return Err(Error::CannotDropRoot);
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let deleted = transaction.execute("DELETE FROM users WHERE name = ?1", [user])?;
        if deleted == 0 {
            return Err(Error::UserNotExist(user.to_string()));
        }
        crate::privileges::forget_user(&transaction, user)?;
        transaction.commit()?;
        drop(connection);
        self.privileges_changed();
        tracing::info!(user, "user dropped");
        Ok(())
    }

    /// The stored password hash of `user` (its PHC string), for replicating the account.
    pub fn user_password_hash(&self, user: &str) -> Result<Option<String>> {
        stored_password_hash(&self.connection(), user)
    }

    /// Creates `user` with an already hashed password, or replaces its hash: how a replicated
    /// account change is applied (the hash must be one this catalog can verify).
    pub fn put_user_hash(&self, user: &str, password_hash: &str) -> Result<()> {
        validate_user_name(user)?;
        check_hash_format(password_hash)?;
        self.connection().execute(
            "INSERT INTO users (name, password_hash, created_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
            (user, password_hash, now_ms()),
        )?;
        self.privileges_changed();
        tracing::info!(user, "user replicated");
        Ok(())
    }

    /// Removes `user` if it exists (a replicated drop); root is never removed.
    pub fn remove_user_if_present(&self, user: &str) -> Result<()> {
        if user == ROOT_USER {
            return Err(Error::CannotDropRoot);
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute("DELETE FROM users WHERE name = ?1", [user])?;
        crate::privileges::forget_user(&transaction, user)?;
        transaction.commit()?;
        drop(connection);
        self.privileges_changed();
        Ok(())
    }

    /// All user names, sorted.
    pub fn list_users(&self) -> Result<Vec<String>> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT name FROM users ORDER BY name")?;
        let names = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    }

    /// Whether the user still has the password it was created with at first start — only root has one —
    /// so the server can warn that the default login is still open.
    pub fn user_has_default_password(&self, user: &str) -> Result<bool> {
        let stored_hash = self.password_hash(user)?;
        if user != ROOT_USER {
            return Ok(false);
        }
        verify_password(ROOT_DEFAULT_PASSWORD, &stored_hash)
    }

    /// The stored hash for `user`, read under the lock and returned so verification can run without it.
    fn password_hash(&self, user: &str) -> Result<String> {
        stored_password_hash(&self.connection(), user)?
            .ok_or_else(|| Error::UserNotExist(user.to_string()))
    }
}

/// An argon2 hash no password is known for, checked against when the user does not exist.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::password::hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default()
    })
}

fn stored_password_hash(connection: &Connection, user: &str) -> Result<Option<String>> {
    let hash = connection
        .query_row(
            "SELECT password_hash FROM users WHERE name = ?1",
            [user],
            |row| row.get(0),
        )
        .optional()?;
    Ok(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::tests::{open_fresh, settings};
    use crate::{Catalog, Error};

    #[test]
    fn authenticate_outcomes() {
        let (_dir, catalog) = open_fresh();
        catalog.authenticate("root", "root").unwrap();
        let wrong = catalog.authenticate("root", "nope").unwrap_err();
        assert!(matches!(wrong, Error::WrongPassword));
        assert_eq!(wrong.to_string(), "Authentication failed.");
        let unknown = catalog.authenticate("ghost", "root").unwrap_err();
        assert!(matches!(&unknown, Error::UserNotExist(name) if name == "ghost"));
        assert_eq!(unknown.to_string(), "User ghost does not exist");
    }

    #[test]
    fn create_list_alter_drop_users() {
        let (_dir, catalog) = open_fresh();
        catalog.create_user("zed", "zed_pass").unwrap();
        catalog.create_user("alice", "alice_pw").unwrap();
        catalog.create_user("Bob_2", "bobby").unwrap();
        // Byte order: upper case sorts before lower case.
        assert_eq!(
            catalog.list_users().unwrap(),
            vec!["Bob_2", "alice", "root", "zed"]
        );
        catalog.authenticate("alice", "alice_pw").unwrap();

        assert!(matches!(
            catalog.create_user("alice", "other_pw"),
            Err(Error::UserExists(name)) if name == "alice"
        ));
        catalog.authenticate("alice", "alice_pw").unwrap();

        catalog.set_password("alice", "new_secret").unwrap();
        assert!(matches!(
            catalog.authenticate("alice", "alice_pw"),
            Err(Error::WrongPassword)
        ));
        catalog.authenticate("alice", "new_secret").unwrap();
        assert!(matches!(
            catalog.set_password("ghost", "whatever"),
            Err(Error::UserNotExist(name)) if name == "ghost"
        ));

        catalog.drop_user("alice").unwrap();
        assert!(matches!(
            catalog.authenticate("alice", "new_secret"),
            Err(Error::UserNotExist(_))
        ));
        assert!(matches!(
            catalog.drop_user("alice"),
            Err(Error::UserNotExist(name)) if name == "alice"
        ));
        assert!(matches!(
            catalog.drop_user("root"),
            Err(Error::CannotDropRoot)
        ));
        assert_eq!(catalog.list_users().unwrap(), vec!["Bob_2", "root", "zed"]);
    }

    #[test]
    fn invalid_names_and_passwords_are_refused() {
        let (_dir, catalog) = open_fresh();
        assert!(matches!(
            catalog.create_user("", "good_pw"),
            Err(Error::InvalidUser(_))
        ));
        assert!(matches!(
            catalog.create_user("bad name", "good_pw"),
            Err(Error::InvalidUser(_))
        ));
        assert!(matches!(
            catalog.create_user(&"u".repeat(33), "good_pw"),
            Err(Error::InvalidUser(_))
        ));
        assert!(matches!(
            catalog.create_user("user", "abc"),
            Err(Error::InvalidPassword(_))
        ));
        assert!(matches!(
            catalog.create_user("user", &"p".repeat(33)),
            Err(Error::InvalidPassword(_))
        ));
        assert!(matches!(
            catalog.set_password("root", "abc"),
            Err(Error::InvalidPassword(_))
        ));
        for bad in ["with space", "quote'd", "dot.ted", "ümlaut1"] {
            assert!(
                matches!(
                    catalog.create_user("user", bad),
                    Err(Error::InvalidPassword(_))
                ),
                "{bad}"
            );
        }
        catalog.create_user("special", "aZ9!@#$%^&*()_+-=").unwrap();
        catalog.drop_user("special").unwrap();
        assert_eq!(catalog.list_users().unwrap(), vec!["root"]);
        catalog.authenticate("root", "root").unwrap();
    }

    #[test]
    fn root_default_password_detection() {
        let (_dir, catalog) = open_fresh();
        assert!(catalog.user_has_default_password("root").unwrap());
        catalog.set_password("root", "s3cret!").unwrap();
        assert!(!catalog.user_has_default_password("root").unwrap());
        catalog.set_password("root", "root").unwrap();
        assert!(catalog.user_has_default_password("root").unwrap());

        // Only root has a default password, even if another user picked the same one.
        catalog.create_user("other", "root").unwrap();
        assert!(!catalog.user_has_default_password("other").unwrap());
        assert!(matches!(
            catalog.user_has_default_password("ghost"),
            Err(Error::UserNotExist(_))
        ));
    }

    #[test]
    fn users_persist_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
            catalog.create_user("alice", "plaintext_pw").unwrap();
            catalog.set_password("root", "changed_pw").unwrap();
            let connection = catalog.connection();
            let mut statement = connection
                .prepare("SELECT password_hash FROM users")
                .unwrap();
            let hashes: Vec<String> = statement
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(hashes.len(), 2);
            for hash in hashes {
                assert!(hash.starts_with("$argon2"), "{hash}");
                assert!(!hash.contains("plaintext_pw") && !hash.contains("changed_pw"));
            }
        }
        let catalog = Catalog::open(dir.path(), &settings("ms", None)).unwrap();
        assert_eq!(catalog.list_users().unwrap(), vec!["alice", "root"]);
        catalog.authenticate("alice", "plaintext_pw").unwrap();
        catalog.authenticate("root", "changed_pw").unwrap();
        assert!(!catalog.user_has_default_password("root").unwrap());
    }
}
