//! A writer beside a rebuild (`--preload`): what the server's commands would meet.

use std::time::{Duration, Instant};

use authledger_projections::db::Writes;
use authledger_projections::{on_db, on_tx, Db};

/// A writer committing a row every 20 ms while a rebuild runs, as the server's commands would:
/// how long the rebuild made it wait at most.
pub(crate) struct WriterProbe {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(u64, u64, Duration)>,
}

impl WriterProbe {
    pub(crate) async fn start(db: &Db) -> WriterProbe {
        let create = "CREATE TABLE IF NOT EXISTS bench_probe (n BIGINT)";
        on_db!(db, pool => sqlx::query(create).execute(pool).await.map(drop)).unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let db = db.clone();
        let task = tokio::spawn(async move {
            let (mut writes, mut failed, mut longest) = (0, 0, Duration::ZERO);
            while stopped.try_recv().is_err() {
                let started = Instant::now();
                let written = async {
                    // Into the log's file, as the group committer writes.
                    let mut tx = db.begin_write_to(Writes::Log).await?;
                    on_tx!(&mut tx, conn => sqlx::query("INSERT INTO bench_probe (n) VALUES (1)").execute(conn).await.map(drop))?;
                    tx.commit().await
                }
                .await;
                longest = longest.max(started.elapsed());
                match written {
                    Ok(()) => writes += 1,
                    // Past the busy timeout: what a command would have answered 503 for.
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (writes, failed, longest)
        });
        WriterProbe { stop, task }
    }

    pub(crate) async fn stop(self) -> (u64, u64, Duration) {
        let _ = self.stop.send(());
        self.task.await.expect("the probe ends")
    }
}
