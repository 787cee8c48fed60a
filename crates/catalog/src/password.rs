//! User name and password rules, and argon2 hashing, kept apart from the SQL so the policy is in one place
//! and clear passwords never reach the database layer.
//!
//! A second kind of stored hash exists for accounts an IoTDB pipe transfers with the hash IoTDB
//! stores (`CreateUserWithRawPassword`): IoTDB's default `MessageDigestEncrypt`
//! (…/commons/security/encrypt/, apache/iotdb 300fb2b and 6431e85) hashes the password's UTF-8 bytes
//! with MD5 and keeps the digest decoded as UTF-8 (`new String(digest, "utf-8")`, so each malformed
//! sequence became U+FFFD). Such a hash is stored as `$iotdb-md5$` and the hex of that string's
//! UTF-8 bytes, and a login is checked by computing the same form of the password typed. The JDK and
//! Rust's `String::from_utf8_lossy` both replace each maximal ill-formed subpart with one U+FFFD (the
//! Unicode recommendation); the tests hold hashes the JDK 17 computed.

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// IoTDB's limits for user names and passwords.
const MAX_NAME_CHARS: usize = 32;
const MIN_PASSWORD_CHARS: usize = 4;
const MAX_PASSWORD_CHARS: usize = 32;

/// Checks a user name against IoTDB-like rules: 1..=32 characters of `[A-Za-z0-9_]`.
pub fn validate_user_name(name: &str) -> Result<()> {
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

/// The characters a password may have besides ASCII letters and digits (IoTDB 2.0's rule:
/// "uppercase and lowercase English letters, numbers, and special characters `!@#$%^&*()_+-=`").
const PASSWORD_SPECIALS: &str = "!@#$%^&*()_+-=";

/// Checks a new password: 4..=32 characters, letters, digits and `!@#$%^&*()_+-=` (IoTDB 2.0's
/// rules). Stored passwords are never re-checked: an older account keeps logging in.
pub(crate) fn validate_password(password: &str) -> Result<()> {
    // The offending character is not named: error messages are logged.
    if password
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !PASSWORD_SPECIALS.contains(c))
    {
        return Err(Error::InvalidPassword(format!(
            "The password can only contain letters, numbers and {PASSWORD_SPECIALS}"
        )));
    }
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
    if let Some(hex) = hash.strip_prefix(IOTDB_MD5_PREFIX) {
        return hex::decode(hex)
            .map(|_| ())
            .map_err(|_| Error::PasswordHash("unreadable IoTDB password hash".to_string()));
    }
    PasswordHash::new(hash)
        .map(|_| ())
        .map_err(|error| Error::PasswordHash(format!("unreadable password hash: {error}")))
}

pub(crate) fn verify_password(password: &str, stored_hash: &str) -> Result<bool> {
    if let Some(hex) = stored_hash.strip_prefix(IOTDB_MD5_PREFIX) {
        let expected = hex::decode(hex)
            .map_err(|_| Error::CorruptCatalog("unreadable IoTDB password hash".to_string()))?;
        return Ok(same_bytes(iotdb_md5_form(password).as_bytes(), &expected));
    }
    let parsed = PasswordHash::new(stored_hash)
        .map_err(|error| Error::CorruptCatalog(format!("unreadable password hash: {error}")))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(Error::PasswordHash(error.to_string())),
    }
}

/// The prefix of a stored IoTDB password hash (see the module header).
const IOTDB_MD5_PREFIX: &str = "$iotdb-md5$";

/// How a hash IoTDB stores (`AuthUtils.encryptPassword`, as a `CreateUserWithRawPassword` plan
/// carries it) is kept here: it verifies the password it was made from.
pub fn iotdb_password_record(iotdb_hash: &str) -> String {
    format!("{IOTDB_MD5_PREFIX}{}", hex::encode(iotdb_hash))
}

/// Checks a password against the account rules and hashes it as a new account's (argon2id), for an
/// account that arrives with its password in clear (an IoTDB `CreateUser` or `UpdateUser` plan).
pub fn hash_new_password(password: &str) -> Result<String> {
    validate_password(password)?;
    hash_password(password)
}

/// IoTDB's `MessageDigestEncrypt.encrypt`: MD5 of the UTF-8 bytes, the digest read as UTF-8.
fn iotdb_md5_form(password: &str) -> String {
    let digest = Md5::digest(password.as_bytes());
    String::from_utf8_lossy(&digest).into_owned()
}

/// Equality that looks at every byte whatever the first difference (no early exit on a match
/// prefix).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        validate_password("aZ9!@#$%^&*()_+-=").unwrap();
        // IoTDB 2.0's character set: letters, digits and !@#$%^&*()_+-= only.
        for bad in [
            "",
            "123",
            &"p".repeat(33),
            "ääää",
            "with space",
            "a.b.c.d",
            "quo'te",
        ] {
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

    /// `new String(md5(password), "utf-8").getBytes("utf-8")` as OpenJDK 17 computes it, in hex.
    const JDK_IOTDB_HASHES: [(&str, &str); 4] = [
        (
            "bob_pw22",
            "efbfbd20efbfbd31efbfbd79efbfbd551aefbfbd18efbfbd0aefbfbd1d",
        ),
        (
            "root",
            "63efbfbdefbfbdefbfbd7befbfbdefbfbd50796b64efbfbdefbfbd481845",
        ),
        (
            "secret1",
            "efbfbd2defbfbdefbfbd59efbfbdefbfbd11775936efbfbddfbb7929",
        ),
        (
            "IoTDB@2011",
            "efbfbdefbfbdefbfbdefbfbd2c1cefbfbdefbfbd2c1c751c325c42efbfbd",
        ),
    ];

    #[test]
    fn iotdb_hashes_verify_the_passwords_the_jdk_hashed() {
        for (password, hex) in JDK_IOTDB_HASHES {
            let bytes = hex::decode(hex).unwrap();
            let iotdb_hash = String::from_utf8(bytes).unwrap();
            let record = iotdb_password_record(&iotdb_hash);
            assert_eq!(record, format!("$iotdb-md5${hex}"));
            check_hash_format(&record).unwrap();
            assert!(verify_password(password, &record).unwrap(), "{password}");
            assert!(!verify_password("wrong_pw", &record).unwrap());
            assert!(!verify_password(&format!("{password}x"), &record).unwrap());
        }
        for bad in ["$iotdb-md5$abc", "$iotdb-md5$zz"] {
            assert!(check_hash_format(bad).is_err(), "{bad}");
            assert!(matches!(
                verify_password("x", bad),
                Err(Error::CorruptCatalog(_))
            ));
        }
    }

    #[test]
    fn unreadable_hash_is_corruption() {
        assert!(matches!(
            verify_password("secret", "not a phc string"),
            Err(Error::CorruptCatalog(_))
        ));
    }
}
