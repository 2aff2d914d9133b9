//! The local cache: one SQLite file (WAL; `synchronous=NORMAL`, full sync
//! for the outbox and for batches with a draft). It holds the last
//! applied seq, owned conversations with unread counts and recent messages,
//! pending offers with absolute deadlines, handled offer ids, drafts, the
//! active session, banners, settings, and the outbox of commands not yet
//! answered by the hub.
//!
//! A batch of engine [`StoreOp`]s is applied in one transaction together with
//! the new last seq, and only then is the hub acked: a `kill -9` at any
//! instant loses nothing the hub was told we have.
//!
//! A cache that cannot be opened or fails its integrity check is moved aside
//! and rebuilt from the hub (one warning).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use switchboard_protocol::{CommandFrame, CommandId, ConversationId, Message, OfferId, Seq};

use crate::engine::{AgentState, ConversationView, PendingOffer, StoreOp, RECENT_MESSAGES};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (id INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, id);
CREATE TABLE IF NOT EXISTS offers (id INTEGER PRIMARY KEY, body TEXT NOT NULL, deadline INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS handled_offers (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS drafts (conversation_id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, command_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accepting (command_id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
"#;

/// The cache format this build writes; a different one is rebuilt.
const FORMAT: &str = "1";

/// Why the cache failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("cache database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// Moving a broken cache aside failed.
    #[error("cannot move the broken cache aside: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row did not decode.
    #[error("corrupt cache row: {0}")]
    Corrupt(String),
}

/// What happened to a broken cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where the broken file now is; `None` when the file was sound but
    /// some rows did not decode (they were skipped, the rest kept).
    pub moved_to: Option<PathBuf>,
    /// Why it was considered broken.
    pub reason: String,
}

/// The open cache.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

/// What [`Store::load`] returns.
#[derive(Debug)]
pub struct Loaded {
    /// The engine state.
    pub state: AgentState,
    /// Commands sent but not answered, in order.
    pub outbox: Vec<CommandFrame>,
    /// The offers those commands accept (see [`StoreOp::PutAccepting`]).
    pub accepting: Vec<PendingOffer>,
    /// Rows that did not decode and were skipped (empty for a sound cache).
    pub unreadable: Vec<String>,
    /// Those rows' keys, for [`Store::forget_unreadable`].
    bad: Vec<BadRow>,
}

/// A cache row [`Store::load`] could not read, by its key.
#[derive(Debug)]
enum BadRow {
    Meta(&'static str),
    Conversation(i64),
    Message(i64),
    Offer(i64),
    Draft(i64),
    Outbox(i64),
    Accepting(String),
}

/// Column `i` of `row` as text, or `None` (noted in `unreadable`) when it
/// is not text.
fn decode_text(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    unreadable: &mut Vec<String>,
    what: impl FnOnce() -> String,
) -> Option<String> {
    match row.try_get::<String, _>(i) {
        Ok(t) => Some(t),
        Err(e) => {
            unreadable.push(format!("{}: {e}", what()));
            None
        }
    }
}

/// Column `i` of `row` decoded from JSON, or `None` (noted in
/// `unreadable`) when it does not decode.
fn decode_row<T: DeserializeOwned>(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    unreadable: &mut Vec<String>,
    what: impl Fn() -> String,
) -> Option<T> {
    let text = decode_text(row, i, unreadable, &what)?;
    match from_json(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            unreadable.push(format!("{}: {e}", what()));
            None
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn connect(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode: a commit survives a crash of the process
        // (kill -9) but the newest commits may roll back on power loss or
        // an OS crash. That is safe for everything from the hub: `last_seq`
        // is written in the same transaction as the ops it covers, the
        // client always resumes from the stored `last_seq`, and the hub
        // replays (or sends a snapshot) from there. The outbox, which holds
        // the agent's own commands, is written with a full sync instead
        // (`apply_with_outbox`). See docs/architecture.md, "Local cache".
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10));
    pool_options().connect_with(options).await
}

/// How the cache's connections are pooled: up to two, each kept for the
/// life of the process. sqlx would close one after 10 minutes idle and
/// each after 30 minutes, which for a local file only churns worker
/// threads and their caches (the hub's store does the same, and says why).
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(2)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// Why a cache could not be opened.
enum OpenProblem {
    /// The file is not a sound cache (corrupt, not SQLite, another
    /// format): set aside and rebuilt from the hub.
    Broken(String),
    /// The file may be fine but cannot be used now (disk full, no
    /// permission, I/O error, locked): an error, and the file is left as
    /// it is, unsent replies and drafts in it, for the next start.
    Unavailable(sqlx::Error),
}

impl From<sqlx::Error> for OpenProblem {
    fn from(e: sqlx::Error) -> Self {
        // SQLITE_CORRUPT (11, and its extended codes) and SQLITE_NOTADB
        // (26) say the file itself is bad; every other error does not.
        let primary = e
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff);
        match primary {
            Some(11 | 26) => OpenProblem::Broken(e.to_string()),
            _ => OpenProblem::Unavailable(e),
        }
    }
}

async fn check(pool: &SqlitePool) -> Result<(), OpenProblem> {
    let ok: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(pool)
        .await?;
    if ok != "ok" {
        return Err(OpenProblem::Broken(format!("integrity check: {ok}")));
    }
    // Statement by statement: `raw_sql` futures are not provably `Send`
    // for all lifetimes, which spawned tasks need.
    for stmt in SCHEMA.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(stmt).execute(pool).await?;
    }
    let format: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'format'")
        .fetch_optional(pool)
        .await?;
    match format.as_deref() {
        None => {
            sqlx::query("INSERT INTO meta (key, value) VALUES ('format', ?)")
                .bind(FORMAT)
                .execute(pool)
                .await?;
            Ok(())
        }
        Some(FORMAT) => Ok(()),
        Some(other) => Err(OpenProblem::Broken(format!(
            "cache format {other}, expected {FORMAT}"
        ))),
    }
}

/// SQLite reads a non-empty file shorter than one page as an empty database
/// and would silently overwrite it; check the header ourselves.
fn header_problem(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 16];
    let n = f.read(&mut header).ok()?;
    if n == 0 {
        return None;
    }
    (n < 16 || &header != b"SQLite format 3\0")
        .then(|| "not a SQLite database (bad header)".to_owned())
}

/// Renames the cache at `path` (and its WAL and shared-memory files) to
/// `<name>.<why>-<seconds>`, out of the way of a fresh one; returns where.
fn move_aside(path: &Path, why: &str) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let moved_to = path.with_extension(format!("{why}-{stamp}"));
    std::fs::rename(path, &moved_to)?;
    for ext in ["db-wal", "db-shm"] {
        let side = path.with_extension(ext);
        if side.exists() {
            let _ = std::fs::rename(&side, moved_to.with_extension(format!("{ext}-{stamp}")));
        }
    }
    Ok(moved_to)
}

impl Store {
    /// Closes this cache, moves it aside as another account's and opens a
    /// fresh one in its place: a cache is only ever read by the account
    /// that wrote it.
    pub async fn set_aside_as_other_account(self) -> Result<(Store, PathBuf), StoreError> {
        self.close().await;
        let moved_to = move_aside(&self.path, "other-account")?;
        let (store, _) = Store::open(&self.path).await?;
        Ok((store, moved_to))
    }

    /// Opens the cache at `path`, creating it; a broken one is moved aside
    /// and a fresh one created (the hub then sends a full snapshot).
    pub async fn open(path: &Path) -> Result<(Store, Option<Recovered>), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let problem = match header_problem(path) {
            Some(reason) => OpenProblem::Broken(reason),
            None => match connect(path).await {
                Ok(pool) => match check(&pool).await {
                    Ok(()) => {
                        return Ok((
                            Store {
                                pool,
                                path: path.to_owned(),
                            },
                            None,
                        ))
                    }
                    Err(problem) => {
                        pool.close().await;
                        problem
                    }
                },
                Err(e) => OpenProblem::from(e),
            },
        };
        let first = match problem {
            OpenProblem::Broken(reason) => reason,
            OpenProblem::Unavailable(e) => {
                tracing::error!(cache = %path.display(), error = %e, "the local cache cannot be opened now; left as it is");
                return Err(StoreError::Sql(e));
            }
        };
        let moved_to = move_aside(path, "corrupt")?;
        tracing::warn!(
            cache = %path.display(),
            moved_to = %moved_to.display(),
            reason = %first,
            "local cache unreadable; moved aside, rebuilding from the hub"
        );
        let pool = connect(path).await?;
        check(&pool).await.map_err(|p| match p {
            OpenProblem::Broken(reason) => StoreError::Corrupt(reason),
            OpenProblem::Unavailable(e) => StoreError::Sql(e),
        })?;
        Ok((
            Store {
                pool,
                path: path.to_owned(),
            },
            Some(Recovered {
                moved_to: Some(moved_to),
                reason: first,
            }),
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folds the WAL into the database file and closes the pool.
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::debug!(error = %e, "checkpoint at close failed");
        }
        self.pool.close().await;
    }

    async fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        v.map(|s| from_json(&s)).transpose()
    }

    /// A meta value for [`Store::load`]: one that does not decode is
    /// noted in `unreadable` and read as absent.
    async fn meta_or_skip<T: DeserializeOwned>(
        &self,
        key: &'static str,
        unreadable: &mut Vec<String>,
        bad: &mut Vec<BadRow>,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let before = unreadable.len();
        let value = row.and_then(|r| decode_row(&r, 0, unreadable, || format!("meta {key}")));
        if unreadable.len() > before {
            bad.push(BadRow::Meta(key));
        }
        Ok(value)
    }

    /// A free-form value (account info for the shell).
    pub async fn get_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.meta(&format!("app.{key}")).await
    }

    /// Sets a free-form value.
    pub async fn set_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(format!("app.{key}"))
            .bind(to_json(&value))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Loads everything. A row that does not decode (a bit flipped on
    /// disk, a file edited by hand) is skipped and named in
    /// [`Loaded::unreadable`], not fatal: the rest (drafts, unsent
    /// commands) is kept, and the cursor is reset so that the hub sends a
    /// full snapshot in place of what was lost.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        let mut unreadable = Vec::new();
        let mut bad = Vec::new();
        let (u, b) = (&mut unreadable, &mut bad);
        let mut state = AgentState {
            last_seq: Seq(self
                .meta_or_skip::<u64>("last_seq", u, b)
                .await?
                .unwrap_or(0)),
            profile: self.meta_or_skip("profile", u, b).await?,
            presence: self.meta_or_skip("presence", u, b).await?,
            active: self
                .meta_or_skip::<Option<ConversationId>>("active", u, b)
                .await?
                .flatten(),
            banners: self
                .meta_or_skip("banners", u, b)
                .await?
                .unwrap_or_default(),
            settings: self
                .meta_or_skip("settings", u, b)
                .await?
                .unwrap_or_default(),
            ..AgentState::default()
        };
        let rows = sqlx::query("SELECT id, record FROM conversations")
            .fetch_all(&self.pool)
            .await?;
        let mut conversations = BTreeMap::new();
        for r in rows {
            let id: i64 = r.try_get(0).unwrap_or_default();
            let Some(mut view) = decode_row::<ConversationView>(&r, 1, &mut unreadable, || {
                format!("conversation {id}")
            }) else {
                bad.push(BadRow::Conversation(id));
                continue;
            };
            let msgs = sqlx::query(
                "SELECT id, body FROM (SELECT id, body FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            )
            .bind(view.summary.id.0)
            .bind(RECENT_MESSAGES as i64)
            .fetch_all(&self.pool)
            .await?;
            view.messages = msgs
                .iter()
                .filter_map(|m| {
                    let mid: i64 = m.try_get(0).unwrap_or_default();
                    let message =
                        decode_row::<Message>(m, 1, &mut unreadable, || format!("message {mid}"));
                    if message.is_none() {
                        bad.push(BadRow::Message(mid));
                    }
                    message
                })
                .collect();
            conversations.insert(view.summary.id, view);
        }
        state.conversations = conversations;
        let rows = sqlx::query("SELECT id, body FROM offers ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let id: i64 = r.try_get(0).unwrap_or_default();
            match decode_row::<PendingOffer>(&r, 1, &mut unreadable, || format!("offer {id}")) {
                Some(p) => {
                    state.offers.insert(p.offer.id, p);
                }
                None => bad.push(BadRow::Offer(id)),
            }
        }
        let handled: Vec<i64> = sqlx::query_scalar("SELECT id FROM handled_offers")
            .fetch_all(&self.pool)
            .await?;
        state.handled_offers = handled.into_iter().map(OfferId).collect::<BTreeSet<_>>();
        for id in &state.handled_offers {
            state.offers.remove(id);
        }
        let drafts = sqlx::query("SELECT conversation_id, text FROM drafts")
            .fetch_all(&self.pool)
            .await?;
        state.drafts = drafts
            .iter()
            .filter_map(|r| {
                let id: i64 = r.try_get(0).ok()?;
                let Some(text) = decode_text(r, 1, &mut unreadable, || format!("draft {id}"))
                else {
                    bad.push(BadRow::Draft(id));
                    return None;
                };
                Some((ConversationId(id), text))
            })
            .collect();
        let outbox = sqlx::query("SELECT n, body FROM outbox ORDER BY n")
            .fetch_all(&self.pool)
            .await?;
        let outbox = outbox
            .iter()
            .filter_map(|r| {
                let n: i64 = r.try_get(0).unwrap_or_default();
                let frame =
                    decode_row::<CommandFrame>(r, 1, &mut unreadable, || format!("outbox row {n}"));
                if frame.is_none() {
                    bad.push(BadRow::Outbox(n));
                }
                frame
            })
            .collect();
        // A row whose accept was answered but whose removal a crash cut
        // off belongs to no command any more.
        sqlx::query(
            "DELETE FROM accepting WHERE command_id NOT IN (SELECT command_id FROM outbox)",
        )
        .execute(&self.pool)
        .await?;
        let accepting = sqlx::query("SELECT command_id, body FROM accepting")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .filter_map(|r| {
                let id: String = r.try_get(0).unwrap_or_default();
                let offer =
                    decode_row::<PendingOffer>(r, 1, &mut unreadable, || format!("accepting {id}"));
                if offer.is_none() {
                    bad.push(BadRow::Accepting(id));
                }
                offer
            })
            .collect();
        if !unreadable.is_empty() {
            tracing::warn!(
                ?unreadable,
                "cache rows unreadable; skipped, asking the hub for everything"
            );
            state.last_seq = Seq(0);
        }
        Ok(Loaded {
            state,
            outbox,
            accepting,
            unreadable,
            bad,
        })
    }

    /// Deletes the rows `loaded` could not read, with the cursor, in one
    /// transaction (nothing for a sound cache). Run by the client that
    /// reported them, not by [`Store::load`]: a look into a cache (whose
    /// account is it?) changes nothing. Nothing rewrites some of them (the
    /// settings, an outbox row), so kept they were unreadable at every
    /// start, each start a full resync and the same notice; the cursor
    /// goes with them so that a crash before the hub's snapshot still asks
    /// for everything.
    pub async fn forget_unreadable(&self, loaded: &Loaded) -> Result<(), StoreError> {
        if loaded.bad.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        put_meta(&mut tx, "last_seq", to_json(&0u64)).await?;
        for row in &loaded.bad {
            let (sql, key) = match row {
                BadRow::Meta(key) => ("DELETE FROM meta WHERE key = ?", (*key).to_owned()),
                BadRow::Conversation(id) => {
                    ("DELETE FROM conversations WHERE id = ?", id.to_string())
                }
                BadRow::Message(id) => ("DELETE FROM messages WHERE id = ?", id.to_string()),
                BadRow::Offer(id) => ("DELETE FROM offers WHERE id = ?", id.to_string()),
                BadRow::Draft(id) => (
                    "DELETE FROM drafts WHERE conversation_id = ?",
                    id.to_string(),
                ),
                BadRow::Outbox(n) => ("DELETE FROM outbox WHERE n = ?", n.to_string()),
                BadRow::Accepting(id) => ("DELETE FROM accepting WHERE command_id = ?", id.clone()),
            };
            // Keys bound as text: SQLite compares them by the column's
            // affinity, so "5" finds integer key 5.
            sqlx::query(sql).bind(key).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies a batch of operations and the new last seq atomically.
    pub fn apply(&self, ops: Vec<StoreOp>, last_seq: Seq) -> StoreFuture {
        self.apply_with_outbox(ops, &[], last_seq)
    }

    /// [`Store::apply`], adding `sends` to the outbox in the same
    /// transaction: a batch that clears a draft (a reply sent) or marks an
    /// offer handled (an accept) is on disk together with the command that
    /// carries it to the hub, or not at all. A crash or a failed write in
    /// between cannot lose the reply or the accept.
    pub fn apply_with_outbox(
        &self,
        ops: Vec<StoreOp>,
        sends: &[CommandFrame],
        last_seq: Seq,
    ) -> StoreFuture {
        // A boxed `Send + 'static` future over an owned pool, so the
        // runtime's spawned task can await it whatever it borrows.
        let pool = self.pool.clone();
        let outbox: Vec<(String, String)> =
            sends.iter().map(|f| (f.id.0.clone(), to_json(f))).collect();
        Box::pin(async move { apply_ops(pool, ops, outbox, last_seq).await })
    }
}

/// A store write, boxed so it can be awaited inside spawned tasks.
pub type StoreFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'static>>;

async fn apply_ops(
    pool: SqlitePool,
    ops: Vec<StoreOp>,
    outbox: Vec<(String, String)>,
    last_seq: Seq,
) -> Result<(), StoreError> {
    // What the agent typed or did is not replayed by the hub if lost: a
    // batch with a draft or a command is synced fully, so it also survives
    // an OS crash or power loss. The composer keeps one save in flight,
    // so a slow disk slows the saves down, not the typing.
    let durable = !outbox.is_empty() || ops.iter().any(|op| matches!(op, StoreOp::PutDraft(..)));
    let mut conn = pool.acquire().await?;
    if durable {
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
    }
    let written = write_batch(&mut conn, ops, outbox, last_seq).await;
    if durable {
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
    }
    written
}

async fn write_batch(
    conn: &mut sqlx::SqliteConnection,
    ops: Vec<StoreOp>,
    outbox: Vec<(String, String)>,
    last_seq: Seq,
) -> Result<(), StoreError> {
    {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for (id, body) in outbox {
            sqlx::query("INSERT OR IGNORE INTO outbox (command_id, body) VALUES (?, ?)")
                .bind(id)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        let mut touched: BTreeSet<i64> = BTreeSet::new();
        for op in without_superseded_records(ops) {
            match op {
                StoreOp::ResetHubState => {
                    // (Separate statements: `raw_sql` futures are not
                    // provably `Send` inside a spawned task.)
                    sqlx::query("DELETE FROM conversations")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM messages")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM offers").execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM drafts").execute(&mut *tx).await?;
                }
                StoreOp::PutProfile(p) => put_meta(&mut tx, "profile", to_json(&p)).await?,
                StoreOp::PutPresence(p) => put_meta(&mut tx, "presence", to_json(&p)).await?,
                StoreOp::PutActive(a) => put_meta(&mut tx, "active", to_json(&a)).await?,
                StoreOp::PutBanners(b) => put_meta(&mut tx, "banners", to_json(&b)).await?,
                StoreOp::PutSettings(s) => put_meta(&mut tx, "settings", to_json(&s)).await?,
                StoreOp::PutConversation(c) => {
                    sqlx::query("INSERT INTO conversations (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record")
                        .bind(c.summary.id.0)
                        .bind(to_json(&c))
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::DeleteConversation(id) => {
                    sqlx::query("DELETE FROM conversations WHERE id = ?")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM messages WHERE conversation_id = ?")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM drafts WHERE conversation_id = ?")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::PutMessage(m) => {
                    sqlx::query("INSERT OR REPLACE INTO messages (id, conversation_id, body) VALUES (?, ?, ?)")
                        .bind(m.id.0)
                        .bind(m.conversation_id.0)
                        .bind(to_json(&m))
                        .execute(&mut *tx)
                        .await?;
                    touched.insert(m.conversation_id.0);
                }
                StoreOp::PutOffer(p) => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO offers (id, body, deadline) VALUES (?, ?, ?)",
                    )
                    .bind(p.offer.id.0)
                    .bind(to_json(&p))
                    .bind(p.deadline.0)
                    .execute(&mut *tx)
                    .await?;
                    // Pending and handled exclude each other (an offer
                    // whose accept was refused is pending again).
                    sqlx::query("DELETE FROM handled_offers WHERE id = ?")
                        .bind(p.offer.id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::OfferHandled(id) => {
                    sqlx::query("DELETE FROM offers WHERE id = ?")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT OR IGNORE INTO handled_offers (id) VALUES (?)")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::PutAccepting { command, offer } => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO accepting (command_id, body) VALUES (?, ?)",
                    )
                    .bind(&command.0)
                    .bind(to_json(&offer))
                    .execute(&mut *tx)
                    .await?;
                }
                StoreOp::KeepOutbox(keep) => {
                    let held: Vec<String> = sqlx::query_scalar("SELECT command_id FROM outbox")
                        .fetch_all(&mut *tx)
                        .await?;
                    for id in held
                        .into_iter()
                        .filter(|id| !keep.contains(&CommandId(id.clone())))
                    {
                        for table in ["outbox", "accepting"] {
                            sqlx::query(&format!("DELETE FROM {table} WHERE command_id = ?"))
                                .bind(&id)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                StoreOp::CommandAnswered(command) => {
                    sqlx::query("DELETE FROM outbox WHERE command_id = ?")
                        .bind(&command.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM accepting WHERE command_id = ?")
                        .bind(&command.0)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::ForgetHandledOffers => {
                    sqlx::query("DELETE FROM handled_offers")
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::PutDraft(c, text) => {
                    if text.is_empty() {
                        sqlx::query("DELETE FROM drafts WHERE conversation_id = ?")
                            .bind(c.0)
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        sqlx::query("INSERT INTO drafts (conversation_id, text) VALUES (?, ?) ON CONFLICT(conversation_id) DO UPDATE SET text = excluded.text")
                            .bind(c.0)
                            .bind(text)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        // Keep only recent history per conversation touched.
        for c in touched {
            sqlx::query(
                "DELETE FROM messages WHERE conversation_id = ?1 AND id < (SELECT MIN(id) FROM (SELECT id FROM messages WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2))",
            )
            .bind(c)
            .bind(RECENT_MESSAGES as i64)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM handled_offers WHERE id < (SELECT MAX(id) FROM handled_offers) - 100000",
        )
        .execute(&mut *tx)
        .await?;
        put_meta(&mut tx, "last_seq", last_seq.0.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Drops every `PutConversation` that a later op in the same batch makes
/// redundant: a later `PutConversation` of the same conversation (records
/// are whole rows, the last one wins), its `DeleteConversation`, or a
/// `ResetHubState`. A flood of 1,000 messages across 10 conversations then
/// writes 10 records instead of 1,000. Everything else keeps its order.
fn without_superseded_records(ops: Vec<StoreOp>) -> Vec<StoreOp> {
    let mut later: BTreeSet<i64> = BTreeSet::new();
    let mut reset_later = false;
    let mut keep: Vec<StoreOp> = Vec::with_capacity(ops.len());
    for op in ops.into_iter().rev() {
        match &op {
            StoreOp::PutConversation(c) if reset_later || !later.insert(c.summary.id.0) => {
                continue;
            }
            StoreOp::DeleteConversation(id) => {
                later.insert(id.0);
            }
            StoreOp::ResetHubState => reset_later = true,
            _ => {}
        }
        keep.push(op);
    }
    keep.reverse();
    keep
}

async fn put_meta(
    conn: &mut sqlx::SqliteConnection,
    key: &'static str,
    value: String,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::VecDeque;
    use switchboard_protocol::{
        Channel, ConversationStatus, ConversationSummary, Customer, Millis, Scenario,
    };

    #[test]
    fn pooled_connections_are_never_recycled() {
        let options = pool_options();
        assert_eq!(options.get_max_connections(), 2);
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
    }

    fn view(id: i64, unread: u32) -> ConversationView {
        ConversationView {
            summary: ConversationSummary {
                id: ConversationId(id),
                channel: Channel::Sms,
                queue: "Support".into(),
                scenario: Scenario::IncomingSms,
                customer: Customer {
                    name: format!("Customer {id}"),
                    phone: None,
                    email: None,
                },
                comment: None,
                created_at: Millis(0),
                status: ConversationStatus::Assigned,
                owner: None,
                identification: None,
                link: None,
                participants: vec![],
            },
            unread,
            last_read: None,
            newest_message: None,
            session_open: false,
            messages: VecDeque::new(),
            has_earlier: None,
        }
    }

    /// Records written several times in one batch keep the last write; a
    /// delete after a write removes the conversation, a write after a
    /// delete brings it back, a reset drops what came before it.
    #[tokio::test]
    async fn a_batch_keeps_the_last_write_of_each_conversation_record() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("cache.db")).await.unwrap();
        let ops = vec![
            StoreOp::PutConversation(view(1, 1)),
            StoreOp::PutConversation(view(2, 1)),
            StoreOp::PutConversation(view(1, 2)),
            StoreOp::PutConversation(view(3, 1)),
            StoreOp::DeleteConversation(ConversationId(2)),
            StoreOp::PutConversation(view(1, 3)),
            StoreOp::DeleteConversation(ConversationId(3)),
            StoreOp::PutConversation(view(3, 7)),
        ];
        store.apply(ops, Seq(8)).await.unwrap();
        let loaded = store.load().await.unwrap().state;
        let unread: Vec<(i64, u32)> = loaded
            .conversations
            .values()
            .map(|c| (c.summary.id.0, c.unread))
            .collect();
        assert_eq!(unread, vec![(1, 3), (3, 7)]);
        assert_eq!(loaded.last_seq, Seq(8));

        let ops = vec![
            StoreOp::PutConversation(view(4, 1)),
            StoreOp::ResetHubState,
            StoreOp::PutConversation(view(5, 2)),
        ];
        store.apply(ops, Seq(9)).await.unwrap();
        let loaded = store.load().await.unwrap().state;
        let ids: Vec<i64> = loaded.conversations.keys().map(|c| c.0).collect();
        assert_eq!(ids, vec![5]);
        store.close().await;
    }
}
