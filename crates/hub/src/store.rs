//! SQLite persistence: opening the database (WAL), schema migrations, and
//! small row helpers. All hub state that must survive a restart lives here;
//! the in-memory side holds only live connections.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Schema migrations, applied in order; never edit an applied one, add a new
/// one instead.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    team_id INTEGER REFERENCES teams(id),
    capacity INTEGER NOT NULL DEFAULT 10,
    presence TEXT NOT NULL DEFAULT 'available',
    last_seq INTEGER NOT NULL DEFAULT 0,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    idle_since INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    channels TEXT NOT NULL,
    allowed_presences TEXT NOT NULL,
    templates TEXT NOT NULL
);
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    thread TEXT NOT NULL,
    queue_id INTEGER NOT NULL REFERENCES queues(id),
    scenario TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    customer_phone TEXT,
    customer_email TEXT,
    comment TEXT,
    status TEXT NOT NULL,
    owner_id INTEGER REFERENCES agents(id),
    created_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE INDEX conversations_open_thread ON conversations(channel, thread) WHERE status <> 'closed';
CREATE INDEX conversations_owner ON conversations(owner_id, status);
CREATE INDEX conversations_status ON conversations(status, created_at);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    author_kind TEXT NOT NULL,
    author_agent_id INTEGER,
    text TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    command_id TEXT
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE TABLE read_markers (
    agent_id INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
) WITHOUT ROWID;
CREATE TABLE offers (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    template TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    resolved_at INTEGER,
    reject_reason TEXT
);
CREATE INDEX offers_agent ON offers(agent_id, status);
CREATE TABLE offer_exclusions (
    conversation_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, agent_id)
) WITHOUT ROWID;
CREATE TABLE events (
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE TABLE commands (
    agent_id INTEGER NOT NULL,
    command_id TEXT NOT NULL,
    reply TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, command_id)
) WITHOUT ROWID;
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE timers (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    UNIQUE (kind, ref_id)
);
CREATE INDEX timers_due ON timers(due_at);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    phone TEXT,
    address TEXT,
    city TEXT,
    state TEXT
);
CREATE INDEX accounts_name ON accounts(name_lc);
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_lc TEXT NOT NULL,
    last_lc TEXT NOT NULL,
    email TEXT,
    email_lc TEXT,
    phone TEXT,
    phone_norm TEXT,
    address TEXT,
    address_lc TEXT,
    city TEXT,
    city_lc TEXT,
    state TEXT,
    state_lc TEXT,
    account_id INTEGER REFERENCES accounts(id)
);
CREATE INDEX contacts_phone ON contacts(phone_norm);
CREATE INDEX contacts_email ON contacts(email_lc);
CREATE INDEX contacts_first ON contacts(first_lc);
CREATE INDEX contacts_last ON contacts(last_lc);
CREATE INDEX contacts_address ON contacts(address_lc);
CREATE INDEX contacts_city ON contacts(city_lc);
CREATE INDEX contacts_state ON contacts(state_lc);
CREATE INDEX contacts_account ON contacts(account_id);
CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    title TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE INDEX cases_contact ON cases(contact_id, open);
CREATE TABLE conversation_participants (
    conversation_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX participants_agent ON conversation_participants(agent_id);
ALTER TABLE conversations ADD COLUMN identification TEXT;
ALTER TABLE conversations ADD COLUMN contact_id INTEGER;
ALTER TABLE conversations ADD COLUMN case_id INTEGER;
ALTER TABLE conversations ADD COLUMN route_origin TEXT;
CREATE INDEX conversations_contact ON conversations(contact_id, created_at);
ALTER TABLE offers ADD COLUMN origin TEXT;
CREATE INDEX offers_conversation ON offers(conversation_id, status);
ALTER TABLE queues ADD COLUMN team_owned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN idle_timeout_secs INTEGER
"#,
    ),
    (
        3,
        r#"
CREATE INDEX agents_team_routing ON agents(team_id, idle_since, id)
"#,
    ),
    (
        4,
        r#"
ALTER TABLE offer_exclusions ADD COLUMN hard INTEGER NOT NULL DEFAULT 0
"#,
    ),
    (
        5,
        r#"
CREATE TABLE config_applied (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    entry TEXT NOT NULL,
    password_hash TEXT,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID
"#,
    ),
    (
        6,
        r#"
CREATE TABLE ingress_ids (
    channel TEXT NOT NULL,
    thread TEXT NOT NULL,
    message_id TEXT NOT NULL,
    conversation_id INTEGER NOT NULL,
    PRIMARY KEY (channel, thread, message_id)
) WITHOUT ROWID
"#,
    ),
    (
        7,
        r#"
ALTER TABLE conversations ADD COLUMN is_call INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET is_call = 1 WHERE scenario = 'incoming_call' OR channel = 'voice';
ALTER TABLE ingress_ids ADD COLUMN created INTEGER NOT NULL DEFAULT 0
"#,
    ),
    (
        8,
        r#"
ALTER TABLE ingress_ids ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE ingress_ids SET seen_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX ingress_ids_seen_at ON ingress_ids (seen_at)
"#,
    ),
    (
        9,
        // The presence a person set before the hub's own change (a missed
        // or rejected offer, the session limit), which a reset goes back
        // to; NULL while the presence is a person's choice.
        "ALTER TABLE agents ADD COLUMN presence_before_system TEXT",
    ),
    (
        10,
        // Every disconnect and sign-out looks up the agent's tokens, and
        // every connect deletes the agent's grace timers: without these,
        // both read the whole table.
        r#"
CREATE INDEX tokens_agent ON tokens(agent_id);
CREATE INDEX timers_agent ON timers(agent_id)
"#,
    ),
];

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The file is from a newer hub.
    #[error("database schema version {found} is newer than this hub ({known})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this hub knows.
        known: i64,
    },
}

/// Opens (creating if needed) the database at `path`, in WAL mode with full
/// fsync, and migrates it.
pub async fn open(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an event acknowledged to a client survives power loss.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = pool_options().connect_with(options).await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// How the hub's connections are pooled: up to four, each opened on demand
/// and then kept for the life of the process.
///
/// sqlx closes a connection after 10 minutes idle and any connection after
/// 30 minutes, which suits a database across a network. For a local file
/// it only churns: each reopened connection is a new worker thread with
/// its own page and statement caches, built again from a freed heap. A
/// one-hour soak's hub stepped up 0.4 MiB at minute 31 and kept it
/// (docs/soak.md).
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(4)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// Splits a migration into statements (no `;` inside our literals).
fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty())
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let mut tx = pool.begin().await?;
        // Statement by statement: `raw_sql` futures are not provably
        // `Send` for all lifetimes, which spawned tasks need.
        for stmt in statements(sql) {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s','now'))",
        )
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_connections_are_never_recycled() {
        let options = pool_options();
        assert_eq!(options.get_max_connections(), 4);
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
    }
}
