//! The catalog's SQL schema as an ordered list of migrations, and the code that brings a database up to date;
//! keeping every past step lets any older catalog file be upgraded in place.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migration `i` (0-based) moves a database from `PRAGMA user_version` `i` to `i + 1`. Append only: a
/// released script must never change, because databases already at that version will not run it again.
const MIGRATIONS: &[&str] = &[
    // 1: identity, users, pipes.
    r#"
    CREATE TABLE identity (
        -- at most one row: the identity is fixed at first start
        singleton            INTEGER PRIMARY KEY CHECK (singleton = 1),
        cluster_id           TEXT    NOT NULL,
        timestamp_precision  TEXT    NOT NULL,
        created_at_ms        INTEGER NOT NULL
    );

    CREATE TABLE users (
        name           TEXT    PRIMARY KEY,
        password_hash  TEXT    NOT NULL,   -- argon2 PHC string, salted; never the clear password
        created_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE pipes (
        name                   TEXT    PRIMARY KEY,
        created_at_ms          INTEGER NOT NULL,
        state                  TEXT    NOT NULL CHECK (state IN ('RUNNING', 'STOPPED')),
        stopped_by_error       INTEGER NOT NULL DEFAULT 0 CHECK (stopped_by_error IN (0, 1)),
        exception_message      TEXT,
        exception_at_ms        INTEGER,
        -- u64 log position stored bit-for-bit in SQLite's signed 64-bit integer
        acknowledged_position  INTEGER NOT NULL DEFAULT 0,
        CHECK ((exception_message IS NULL) = (exception_at_ms IS NULL))
    );

    CREATE TABLE pipe_parameters (
        pipe      TEXT    NOT NULL REFERENCES pipes (name) ON DELETE CASCADE,
        stage     TEXT    NOT NULL CHECK (stage IN ('source', 'processor', 'sink')),
        position  INTEGER NOT NULL,   -- keeps the order the user wrote the parameters in
        key       TEXT    NOT NULL,
        value     TEXT    NOT NULL,
        PRIMARY KEY (pipe, stage, position)
    );
    "#,
    // 2: the tree-model schema: databases and time series.
    r#"
    CREATE TABLE databases (
        path           TEXT    PRIMARY KEY,   -- e.g. root.sg
        created_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE timeseries (
        path        TEXT    PRIMARY KEY,      -- full series path, e.g. root.sg.d1.s1
        database    TEXT    NOT NULL REFERENCES databases (path) ON DELETE CASCADE,
        device      TEXT    NOT NULL,         -- root.sg.d1
        data_type   TEXT    NOT NULL,         -- IoTDB type name: INT32, TEXT, ...
        encoding    TEXT    NOT NULL,
        compressor  TEXT    NOT NULL,
        aligned     INTEGER NOT NULL CHECK (aligned IN (0, 1))
    );
    CREATE INDEX timeseries_by_device ON timeseries (device);
    "#,
    // 3: whether a pipe has sent its history.
    r#"
    ALTER TABLE pipes ADD COLUMN history_done INTEGER NOT NULL DEFAULT 0 CHECK (history_done IN (0, 1));
    "#,
    // 4: TTL rules (IoTDB's device TTL): a device path or a prefix path ending in `.**`.
    r#"
    CREATE TABLE ttl_rules (
        pattern     TEXT    PRIMARY KEY,      -- root.sg.d1 or root.sg.**
        ttl_ms      INTEGER NOT NULL CHECK (ttl_ms > 0)
    );
    "#,
    // 5: device templates, the paths they are set on, and the devices that activated them.
    r#"
    CREATE TABLE templates (
        name           TEXT    PRIMARY KEY,
        aligned        INTEGER NOT NULL CHECK (aligned IN (0, 1)),
        created_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE template_measurements (
        template     TEXT    NOT NULL REFERENCES templates (name) ON DELETE CASCADE,
        measurement  TEXT    NOT NULL,
        data_type    TEXT    NOT NULL,   -- IoTDB type name
        encoding     TEXT    NOT NULL,
        compressor   TEXT    NOT NULL,
        PRIMARY KEY (template, measurement)
    );

    CREATE TABLE template_set (
        path      TEXT  PRIMARY KEY,     -- e.g. root.sg1 or root.sg1.d1
        template  TEXT  NOT NULL REFERENCES templates (name)
    );

    CREATE TABLE template_activations (
        device    TEXT  PRIMARY KEY,     -- root.sg1.d1
        template  TEXT  NOT NULL REFERENCES templates (name),
        database  TEXT  NOT NULL REFERENCES databases (path) ON DELETE CASCADE
    );
    "#,
    // 6: the version of the last change of each replicated schema object (a database, a series, a
    // TTL rule), and whether that change left it present: replicated schema changes apply only over
    // older ones, so both sides of a pipe converge whatever order the changes arrive in.
    r#"
    CREATE TABLE schema_versions (
        object    TEXT     PRIMARY KEY,  -- db:<path>, ts:<device><measurement>, ttl:<pattern>
        hlc       INTEGER  NOT NULL,
        instance  INTEGER  NOT NULL,
        present   INTEGER  NOT NULL
    );
    "#,
    // 7: roles, the roles each user holds, and grants (IoTDB's privileges) of users and roles. A
    // global privilege is stored on `root.**`, as IoTDB lists it. An upgraded catalog's users keep
    // what every user could do before privileges existed (read, write and define data anywhere,
    // create and drop databases), so an upgrade breaks no application; root needs no grants.
    r#"
    CREATE TABLE roles (
        name           TEXT    PRIMARY KEY,
        created_at_ms  INTEGER NOT NULL
    );

    CREATE TABLE user_roles (
        user  TEXT  NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        role  TEXT  NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
        PRIMARY KEY (user, role)
    );

    CREATE TABLE grants (
        holder_kind   TEXT     NOT NULL CHECK (holder_kind IN ('user', 'role')),
        holder        TEXT     NOT NULL,
        privilege     TEXT     NOT NULL,  -- READ_DATA, MANAGE_USER, ...
        path          TEXT     NOT NULL,  -- a full path or a prefix ending in .**; root.** for global ones
        grant_option  INTEGER  NOT NULL CHECK (grant_option IN (0, 1)),
        PRIMARY KEY (holder_kind, holder, privilege, path)
    );

    INSERT INTO grants (holder_kind, holder, privilege, path, grant_option)
        SELECT 'user', users.name, kept.privilege, 'root.**', 0
        FROM users, (SELECT 'READ_DATA' AS privilege UNION ALL SELECT 'WRITE_DATA'
                     UNION ALL SELECT 'READ_SCHEMA' UNION ALL SELECT 'WRITE_SCHEMA'
                     UNION ALL SELECT 'MANAGE_DATABASE') AS kept
        WHERE users.name <> 'root';
    "#,
];

/// The schema version this code writes and understands.
pub(crate) const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads the schema version from the database header.
pub(crate) fn schema_version(connection: &Connection) -> Result<u32> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(version)
        .map_err(|_| Error::CorruptCatalog(format!("invalid schema version {version}")))
}

/// Applies every migration the database has not seen yet, each in its own transaction together with the
/// version bump, so a crash mid-upgrade leaves the database at a consistent earlier version.
pub(crate) fn migrate(connection: &mut Connection) -> Result<()> {
    let found = schema_version(connection)?;
    if found > CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            known: CURRENT_VERSION,
        });
    }
    for (next_version, script) in (1u32..).zip(MIGRATIONS).skip(found as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(script)?;
        transaction.pragma_update(None, "user_version", next_version)?;
        transaction.commit()?;
        tracing::info!(version = next_version, "catalog schema migrated");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_database_to_the_current_version() {
        let mut connection = Connection::open_in_memory().unwrap();
        assert_eq!(schema_version(&connection).unwrap(), 0);
        migrate(&mut connection).unwrap();
        assert_eq!(schema_version(&connection).unwrap(), CURRENT_VERSION);
        // Idempotent: a second run has nothing to do.
        migrate(&mut connection).unwrap();
        assert_eq!(schema_version(&connection).unwrap(), CURRENT_VERSION);
    }

    #[test]
    fn upgraded_users_keep_what_they_could_do_before_privileges() {
        let mut connection = Connection::open_in_memory().unwrap();
        // A catalog as version 6 left it, with root and one user.
        for (version, script) in (1u32..).zip(&MIGRATIONS[..6]) {
            connection.execute_batch(script).unwrap();
            connection
                .pragma_update(None, "user_version", version)
                .unwrap();
        }
        connection
            .execute_batch("INSERT INTO users VALUES ('root', 'h', 0), ('alice', 'h', 0);")
            .unwrap();
        migrate(&mut connection).unwrap();
        let mut statement = connection
            .prepare("SELECT holder, privilege, path FROM grants ORDER BY privilege")
            .unwrap();
        let grants: Vec<(String, String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let names: Vec<&str> = grants.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "MANAGE_DATABASE",
                "READ_DATA",
                "READ_SCHEMA",
                "WRITE_DATA",
                "WRITE_SCHEMA"
            ]
        );
        assert!(grants
            .iter()
            .all(|(holder, _, path)| holder == "alice" && path == "root.**"));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        match migrate(&mut connection) {
            Err(Error::SchemaTooNew { found, known }) => {
                assert_eq!(found, CURRENT_VERSION + 1);
                assert_eq!(known, CURRENT_VERSION);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
