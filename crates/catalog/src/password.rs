//! User name and password rules, and argon2 hashing, kept apart from the SQL so the policy is in one place
//! and clear passwords never reach the database layer.

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{Error, Result};

/// IoTDB's limits for user names and passwords.
const MAX_NAME_CHARS: usize = 32;
const MIN_PASSWORD_CHARS: usize = 4;
const MAX_PASSWORD_CHARS: usize = 32;

/// Checks a user name against IoTDB-like rules: 1..=32 characters of `[A-Za-z0-9_]`.
pub(crate) fn validate_user_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidUser(
            "The user name must not be empty".to_string(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidUser(format!(
            "The length of the user name must be less than or equal to {MAX_NAME_CHARS}"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::InvalidUser(
            "The user name can only contain letters, numbers and underscores".to_string(),
        ));
    }
    Ok(())
}

/// Checks a password's length: 4..=32 characters.
pub(crate) fn validate_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(Error::InvalidPassword(format!(
            "The length of the password must be greater than or equal to {MIN_PASSWORD_CHARS}"
        )));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(Error::InvalidPassword(format!(
            "The length of the password must be less than or equal to {MAX_PASSWORD_CHARS}"
        )));
    }
    Ok(())
}

/// Hashes a password into an argon2id PHC string with a fresh random salt.
pub(crate) fn hash_password(password: &str) -> Result<String> {
    // The salt only has to be unique, not secret; a v4 UUID's 122 random bits come from the OS generator,
    // which saves pulling in a second source of randomness just for salts.
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|error| Error::PasswordHash(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| Error::PasswordHash(error.to_string()))
}

/// Whether `password` matches the stored PHC string. The parameters come from the string itself, so hashes
/// written with older parameters keep verifying.
/// Checks that `hash` is a PHC string this catalog can verify passwords against (a replicated
/// account's hash).
pub(crate) fn check_hash_format(hash: &str) -> Result<()> {
    PasswordHash::new(hash)
        .map(|_| ())
        .map_err(|error| Error::PasswordHash(format!("unreadable password hash: {error}")))
}

pub(crate) fn verify_password(password: &str, stored_hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(stored_hash)
        .map_err(|error| Error::CorruptCatalog(format!("unreadable password hash: {error}")))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(Error::PasswordHash(error.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn user_name_rules() {
        validate_user_name("a").unwrap();
        validate_user_name("user_01").unwrap();
        validate_user_name(&"x".repeat(32)).unwrap();
        for bad in ["", "has space", "dash-ed", "ümlaut", &"x".repeat(33)] {
            assert!(
                matches!(validate_user_name(bad), Err(Error::InvalidUser(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn password_rules() {
        validate_password("1234").unwrap();
        validate_password(&"p".repeat(32)).unwrap();
        validate_password("ääää").unwrap();
        for bad in ["", "123", &"p".repeat(33)] {
            assert!(
                matches!(validate_password(bad), Err(Error::InvalidPassword(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn hashes_are_salted_and_verify() {
        let first = hash_password("secret").unwrap();
        let second = hash_password("secret").unwrap();
        assert_ne!(first, second, "each hash gets its own salt");
        assert!(first.starts_with("$argon2id$"));
        assert!(!first.contains("secret"));
        assert!(verify_password("secret", &first).unwrap());
        assert!(verify_password("secret", &second).unwrap());
        assert!(!verify_password("Secret", &first).unwrap());
    }

    #[test]
    fn unreadable_hash_is_corruption() {
        assert!(matches!(
            verify_password("secret", "not a phc string"),
            Err(Error::CorruptCatalog(_))
        ));
    }
}
