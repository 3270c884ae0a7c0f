//! On SQLite the read side lives in a database file of its own beside the log's, attached to
//! every connection as `views`.
//!
//! Why: a rebuild builds every view again from the log in a scratch file, holding no lock on
//! the store. With the views inside the log's file, putting them in place meant copying every
//! row back under the store's write lock: 18 s for a million events (1.3 GB of views and
//! indexes through the write-ahead log), longer than the 10 s other writers wait. With a file of
//! their own, the scratch file *becomes* the views: a symbolic link (`<store>-views`) is
//! switched to it in one `rename`, under the lock only for the last few events.
//!
//! How connections follow a switch: each pooled connection attaches the file the link names
//! when it opens. Before a connection is handed out, the link is read again (one `readlink`);
//! once it names another file, every connection opened before this process saw the change is
//! closed instead of handed out, and new ones attach the new file. A writer checks once more
//! after taking the write lock (switches happen under that lock), so nothing is written into a
//! file that is no longer the views.
//!
//! The views are not migrated: their tables are `migrations/sqlite-views/schema.sql`, and a
//! file of another [`VERSION`] (or none, or one further along the log than the log itself, as
//! after restoring an older copy of the store) is replaced by a new, empty one at start, which
//! the projector fills from the whole log. The projections' checkpoints live in the views file
//! (`views.projection_checkpoints`): rows and how far they are built switch together. Readers
//! that act on the log (the ledger's linker, the reactors) keep theirs in the log's file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor, SqliteConnection};

/// The views' tables and indexes, one statement per `;`.
pub const SCHEMA: &str = include_str!("../../migrations/sqlite-views/schema.sql");

/// The schema's version, kept as the views file's `user_version`. Change it with the schema:
/// a file of another version is built again from the log. (2: four indexes partial,
/// `audit_grant_subjects` without a rowid.)
pub const VERSION: i64 = 2;

/// A views file's page size, fresh or rebuilt: fewer levels to descend and fewer pages to
/// write than SQLite's 4 KiB. A rebuild of a million events (three random-key inserts an
/// event) took 22.1 s instead of 24.0 with these pages and `audit_grant_subjects` without a
/// rowid, measured together; 16 KiB pages gained nothing more.
pub const PAGE_SIZE: u32 = 8192;

/// The views' page cache on each pooled connection, in KiB (SQLite's default is 2,000).
/// Every connection of the pool takes its turn as the projector's, so each filled a cache of
/// its own with the views' index pages: 15 of the 21 MB SQLite held at the benchmark's
/// memory peak, for pages the operating system's file cache holds anyway. A page not in this
/// cache is read from there. A rebuild writes through a connection of its own, with a larger
/// cache (`rebuild/sqlite/scratch.rs`).
const POOLED_CACHE_KIB: u32 = 512;

/// One statement of [`SCHEMA`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    pub sql: &'static str,
    pub table: &'static str,
    /// A table, or an index the views look rows up and upsert by: made before a rebuild's
    /// replay. The other indexes are made once the tables are filled (one sort each).
    pub needed_while_filling: bool,
}

/// [`SCHEMA`] without its comment lines.
static SCHEMA_SQL: LazyLock<String> = LazyLock::new(|| {
    SCHEMA
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
});

/// The statements of [`SCHEMA`], in order.
pub fn statements() -> Vec<Statement> {
    SCHEMA_SQL
        .split(';')
        .map(str::trim)
        .filter(|sql| !sql.is_empty())
        .map(|sql| {
            let words: Vec<&str> = sql.split_whitespace().collect();
            let (table, needed) = match words.as_slice() {
                ["CREATE", "TABLE", name, ..] => (*name, true),
                ["CREATE", "UNIQUE", "INDEX", _, "ON", table, ..] => (*table, true),
                ["CREATE", "INDEX", _, "ON", table, ..] => (*table, false),
                _ => panic!("schema.sql: unexpected statement {sql}"),
            };
            Statement {
                sql,
                table,
                needed_while_filling: needed,
            }
        })
        .collect()
}

/// Where the store's views are: the symbolic link `<store>-views`.
fn link_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-views");
    PathBuf::from(name)
}

/// A new views file's name: `<store>-views-<process>-<n>`. The process id lets a later start
/// remove files a dead process left (a rebuild that stopped half-way).
pub(crate) fn new_file_name(store: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = link_of(store).into_os_string();
    name.push(format!(
        "-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(name)
}

/// Removes a database file and the journal, WAL and shared-memory files beside it.
pub(crate) fn remove_files(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
}

/// `path` as a URI SQLite opens read-write and never creates: attaching a file that another
/// process just removed must fail, not make an empty one.
fn existing_file_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

/// The views file of one store, as this process follows it.
#[derive(Debug)]
pub struct ViewsFile {
    link: PathBuf,
    seen: Mutex<Seen>,
}

/// The file the link named when this process last read it, since when, and how many switches
/// this process has seen.
#[derive(Debug)]
struct Seen {
    file: PathBuf,
    since: Instant,
    switches: u64,
}

/// One [`ViewsFile`] per store per process, whichever pool opened it.
static FILES: LazyLock<Mutex<std::collections::HashMap<PathBuf, Weak<ViewsFile>>>> =
    LazyLock::new(Default::default);

impl ViewsFile {
    /// The views file of the store at `store`, made if it is missing or unusable (see the
    /// module documentation).
    pub(crate) async fn open(store: &Path) -> Result<Arc<ViewsFile>, sqlx::Error> {
        let link = link_of(store);
        let usable = match resolve(&link) {
            Some(file) if usable(store, &file).await? => Some(file),
            _ => None,
        };
        let file = match usable {
            Some(file) => file,
            None => {
                let file = new_file_name(store);
                create(&file).await?;
                switch_link(&link, &file).map_err(sqlx::Error::Io)?;
                file
            }
        };
        remove_abandoned(store, &file);
        let mut files = FILES.lock().unwrap_or_else(|p| p.into_inner());
        files.retain(|_, f| f.strong_count() > 0);
        if let Some(known) = files.get(store).and_then(Weak::upgrade) {
            known.follow();
            return Ok(known);
        }
        let views = Arc::new(ViewsFile {
            link,
            seen: Mutex::new(Seen {
                file,
                since: Instant::now(),
                switches: 0,
            }),
        });
        files.insert(store.to_path_buf(), Arc::downgrade(&views));
        Ok(views)
    }

    /// The views file this process follows for the store at `store`, if one was opened.
    pub(crate) fn of(store: &Path) -> Option<Arc<ViewsFile>> {
        FILES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(store)
            .and_then(Weak::upgrade)
    }

    /// Points the link at `file` (a complete views file, durable on disk) and returns the
    /// file it named before. Called under the store's write lock.
    pub(crate) fn switch_to(&self, file: &Path) -> std::io::Result<PathBuf> {
        let old = self.current();
        switch_link(&self.link, file)?;
        self.follow();
        Ok(old)
    }

    /// The file the link names now (after reading it again).
    pub(crate) fn current(&self) -> PathBuf {
        self.follow();
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .clone()
    }

    /// Reads the link again; returns whether it names another file than last time.
    pub(crate) fn follow(&self) -> bool {
        let Some(now) = resolve(&self.link) else {
            // Removed by hand: keep what is attached rather than fail every request.
            return false;
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.file == now {
            return false;
        }
        tracing::info!(views = %now.display(), "the views file was switched (a rebuild)");
        *seen = Seen {
            file: now,
            since: Instant::now(),
            switches: seen.switches + 1,
        };
        true
    }

    /// How many switches this process has seen, without reading the link again. A writer
    /// notes it before taking a connection (which reads the link as it is handed out) and,
    /// once it holds the write lock, follows the link and compares.
    pub(crate) fn switches_seen(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).switches
    }

    /// Attaches the current views file to a new connection.
    pub(crate) async fn attach(
        &self,
        connection: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        // The link can be switched and the old file removed between reading it and
        // attaching: then attaching fails (the file is never created) and is tried again.
        let mut tries = 0;
        loop {
            let file = self.current();
            let attached = sqlx::query("ATTACH DATABASE ? AS views")
                .bind(existing_file_uri(&file))
                .execute(&mut *connection)
                .await;
            match attached {
                Ok(_) => break,
                Err(_) if tries < 3 => tries += 1,
                Err(error) => return Err(error),
            }
        }
        // The views can be built again from the log: a commit need not wait for the disk
        // (WAL with NORMAL stays consistent after a power cut, its last commits may be lost,
        // checkpoints with them, and are projected again). `secure_delete` is inherited from
        // the log's file, as every attached file inherits it.
        connection
            .execute("PRAGMA views.synchronous = NORMAL")
            .await?;
        connection
            .execute(format!("PRAGMA views.cache_size = -{POOLED_CACHE_KIB}").as_str())
            .await?;
        Ok(())
    }

    /// Whether a pooled connection opened `age` ago still has the current file attached.
    pub(crate) fn attached_current(&self, age: Duration) -> bool {
        self.follow();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match Instant::now().checked_sub(age) {
            Some(opened) => opened >= seen.since,
            None => false,
        }
    }
}

/// Points the link at `file` in one `rename` (a new link beside it first), durably.
fn switch_link(link: &Path, file: &Path) -> std::io::Result<()> {
    let target = file.file_name().map(PathBuf::from).unwrap_or(file.into());
    let mut beside = link.as_os_str().to_owned();
    beside.push(format!(".{}", std::process::id()));
    let beside = PathBuf::from(beside);
    let _ = std::fs::remove_file(&beside);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &beside)?;
    #[cfg(not(unix))]
    compile_error!("the SQLite store's views file is followed through a symbolic link");
    std::fs::rename(&beside, link)?;
    if let Some(dir) = link.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The file the link names, relative to the link's directory, if it is there.
fn resolve(link: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(link).ok()?;
    Some(match link.parent() {
        Some(dir) if target.is_relative() => dir.join(target),
        _ => target,
    })
}

/// Whether `file` holds views of this schema's version that are not further along the log
/// than the log in `store` (a store restored from an older copy beside newer views).
async fn usable(store: &Path, file: &Path) -> Result<bool, sqlx::Error> {
    if !file.exists() {
        return Ok(false);
    }
    let mut views = SqliteConnectOptions::new().filename(file).connect().await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut views)
        .await?;
    if version != VERSION {
        views.close().await?;
        return Ok(false);
    }
    let built: Option<i64> =
        sqlx::query_scalar("SELECT max(global_position) FROM projection_checkpoints")
            .fetch_one(&mut views)
            .await?;
    views.close().await?;
    let mut log = SqliteConnectOptions::new()
        .filename(store)
        .connect()
        .await?;
    // The last position the log ever gave, archived events included (`ledger archive`
    // removes them from `events`).
    let has_log: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master \
         WHERE type = 'table' AND name = 'event_position_counter'",
    )
    .fetch_one(&mut log)
    .await?;
    let head: Option<i64> = match has_log {
        true => {
            sqlx::query_scalar("SELECT max(last_position) FROM event_position_counter")
                .fetch_one(&mut log)
                .await?
        }
        false => None,
    };
    log.close().await?;
    Ok(built.unwrap_or(0) <= head.unwrap_or(0))
}

/// Makes an empty views file at `path` (readable by its owner only: it holds personal data)
/// with every table of the schema, its indexes too, at this [`VERSION`].
async fn create(path: &Path) -> Result<(), sqlx::Error> {
    crate::db::create_private_file(&path.to_string_lossy()).map_err(sqlx::Error::Io)?;
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .connect()
        .await?;
    connection
        .execute(format!("PRAGMA user_version = {VERSION}").as_str())
        .await?;
    for statement in statements() {
        connection.execute(statement.sql).await?;
    }
    connection.close().await
}

/// Views files a dead process left (a rebuild that stopped half-way, or a file replaced
/// while that process still had it open), other than `current`. Only where `/proc` says
/// which processes live.
fn remove_abandoned(store: &Path, current: &Path) {
    let link = link_of(store);
    let (Some(dir), Some(name)) = (link.parent(), link.file_name()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let current = current
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let ours = current.as_deref().is_some_and(|current| {
            ["", "-journal", "-wal", "-shm"]
                .iter()
                .any(|suffix| name == format!("{current}{suffix}"))
        });
        if !ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_reads_as_tables_then_their_indexes() {
        let statements = statements();
        assert!(statements.len() > 20);
        assert_eq!(statements[0].table, "projection_checkpoints");
        let grant_indexes: Vec<_> = statements
            .iter()
            .filter(|s| s.table == "grant_view" && !s.needed_while_filling)
            .collect();
        assert_eq!(grant_indexes.len(), 5);
        assert!(statements.iter().all(|s| s.sql.starts_with("CREATE")));
    }

    /// A partial index (`WHERE column IS NOT NULL`) is of use only if SQLite sees that a query
    /// asking one value of its column implies the condition: otherwise an audit query by
    /// user would read the whole log's rows.
    #[tokio::test]
    async fn every_partial_index_serves_a_query_for_one_value_of_its_column() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        for statement in statements() {
            conn.execute(statement.sql).await.unwrap();
        }
        let partial: Vec<_> = statements()
            .into_iter()
            .filter(|s| s.sql.contains(" WHERE ") && s.sql.ends_with("IS NOT NULL"))
            .collect();
        assert_eq!(partial.len(), 5, "{partial:?}");
        for index in partial {
            let words: Vec<&str> = index.sql.split_whitespace().collect();
            let (name, column) = (words[2], words[5].trim_start_matches('('));
            let column = column.trim_end_matches([',', ')']);
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT * FROM {} WHERE {column} = $1",
                index.table
            );
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&sql).fetch_all(&mut conn).await.unwrap();
            assert!(
                plan.iter()
                    .any(|(.., detail)| detail.contains(&format!("INDEX {name} "))),
                "{sql}: {plan:?}"
            );
        }
    }

    #[test]
    fn a_file_is_attached_by_a_uri_that_never_creates_it() {
        assert_eq!(
            existing_file_uri(Path::new("/d/a?b#c%d")),
            "file:/d/a%3fb%23c%25d?mode=rw"
        );
    }
}
