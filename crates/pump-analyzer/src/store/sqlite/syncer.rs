//! The writer's syncer thread: it syncs the write-ahead log after commits that left the sync
//! undone (see `wal_buffer::defer_commit_syncs`). With `SQLITE_SYNC=full` it answers their
//! requests once the sync has returned, while the writer runs the next group, so a large group's
//! sync overlaps the next group's inserts instead of adding to them. With `SQLITE_SYNC=background`
//! the writer has answered them already, and each sync bounds what a power cut could take; there
//! the syncs are spaced `BACKGROUND_SPACING` apart, so that one sync covers many commits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Job;
use crate::store::{CommitStats, StoreError};

pub(super) struct Syncer {
    groups: mpsc::Sender<Vec<Job>>,
    failed: Arc<AtomicBool>,
}

/// With `SQLITE_SYNC=background`, the least time from the start of one sync to the start of the
/// next: commits in between wait for the next sync together. A sync costs the machine the same
/// CPU time whatever it carries (a virtual disk's sync is an exit to the hypervisor and an
/// interrupt), so one sync for many commits saves the machine's time; the spacing bounds what a
/// power cut can take to the last few milliseconds of answers. Figures:
/// `docs/performance-history.md`.
pub(super) const BACKGROUND_SPACING: Duration = Duration::from_millis(2);

const FAILED: &str = "the database could not sync its log to disk; restart the server";

impl Syncer {
    /// Starts the thread for the database whose WAL is the file `wal`; it counts its syncs in
    /// `stats` and starts them at least `spacing` apart (zero when the writer waits for them).
    pub(super) fn start(wal: PathBuf, stats: Arc<CommitStats>, spacing: Duration) -> Result<Self, StoreError> {
        let (groups, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        std::thread::Builder::new()
            .name("sqlite-syncer".into())
            .spawn(move || run(&wal, &rx, &flag, &stats, spacing))
            .map_err(|e| StoreError::Internal(format!("cannot start the syncer thread: {e}")))?;
        Ok(Self { groups, failed })
    }

    /// Answers `jobs`, committed with their sync deferred, after the next sync of the log.
    pub(super) fn hand_over(&self, jobs: Vec<Job>) {
        if let Err(mpsc::SendError(jobs)) = self.groups.send(jobs) {
            // The thread is gone (it never exits while we hold the sender): answer here.
            jobs.into_iter().for_each(|job| job.finish(Err(StoreError::Unavailable(FAILED.into()))));
        }
    }

    /// Has the log synced soon: after a commit whose requests were answered already.
    pub(super) fn sync_soon(&self) {
        self.hand_over(Vec::new());
    }

    /// Once a sync has failed, nothing more may be acknowledged: the kernel may have dropped the
    /// pages it could not write (the lesson of PostgreSQL's "fsyncgate"), so the writer refuses
    /// every later write with this error.
    pub(super) fn failure(&self) -> Option<StoreError> {
        self.failed.load(Ordering::Acquire).then(|| StoreError::Unavailable(FAILED.into()))
    }
}

fn run(
    wal: &std::path::Path,
    rx: &mpsc::Receiver<Vec<Job>>,
    failed: &AtomicBool,
    stats: &CommitStats,
    spacing: Duration,
) {
    while let Ok(first) = rx.recv() {
        // Every group queued by now was committed before this sync starts, so it covers them all.
        let mut groups = vec![first];
        groups.extend(rx.try_iter());
        // Opened for each sync: any descriptor of the file syncs its pages, and a fresh one can
        // never point at a log SQLite has since replaced.
        let started = Instant::now();
        let synced = std::fs::File::open(wal).and_then(|file| file.sync_data());
        let answer = match synced {
            Ok(()) => {
                stats.record_sync(started.elapsed());
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, path = %wal.display(), "cannot sync the database log; refusing further writes");
                failed.store(true, Ordering::Release);
                Err(StoreError::Unavailable(FAILED.into()))
            }
        };
        for job in groups.into_iter().flatten() {
            job.finish(answer.clone());
        }
        // Commits meanwhile queue their requests for a sync; the next one covers them all.
        std::thread::sleep(spacing.saturating_sub(started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::super::{Pending, Writer};
    use super::*;

    /// A job that has run and answers 7 unless its commit failed.
    fn job() -> (Job, oneshot::Receiver<Result<i32, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        let work = |_: &mut Writer| Ok(7);
        (Box::new(Pending { work, result: Some(Ok(7)), reply }), rx)
    }

    /// A scratch directory holding a log file, and a syncer for it started with `spacing`.
    fn scratch_syncer(spacing: Duration) -> (PathBuf, Arc<CommitStats>, Syncer) {
        let dir = std::env::temp_dir().join(format!("pump-syncer-{}", crate::security::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let wal = dir.join("t.db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let stats = Arc::new(CommitStats::default());
        let syncer = Syncer::start(wal, stats.clone(), spacing).unwrap();
        (dir, stats, syncer)
    }

    /// Waits until `stats` has counted `syncs` syncs.
    fn wait_for_syncs(stats: &CommitStats, syncs: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.read().syncs < syncs {
            assert!(Instant::now() < deadline, "the syncer never reached {syncs} syncs");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn groups_are_answered_once_their_log_is_synced() {
        let (dir, stats, syncer) = scratch_syncer(Duration::ZERO);
        let (first, a) = job();
        let (second, b) = job();
        syncer.hand_over(vec![first]);
        syncer.hand_over(vec![second]);
        assert_eq!(a.blocking_recv().unwrap().unwrap(), 7);
        assert_eq!(b.blocking_recv().unwrap().unwrap(), 7);
        assert!(syncer.failure().is_none());
        let syncs = stats.read().syncs;
        assert!((1..=2).contains(&syncs), "two groups, one or two syncs: {syncs}");
        // A sync with no one to answer still runs, and is counted.
        syncer.sync_soon();
        wait_for_syncs(&stats, syncs + 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spaced_syncs_start_apart_and_one_covers_every_commit_in_between() {
        let spacing = Duration::from_millis(300);
        let (dir, stats, syncer) = scratch_syncer(spacing);
        let before = Instant::now();
        syncer.sync_soon();
        wait_for_syncs(&stats, 1);
        // Five commits while the syncer waits out the spacing: one sync covers them.
        for _ in 0..5 {
            syncer.sync_soon();
        }
        wait_for_syncs(&stats, 2);
        assert!(
            before.elapsed() >= spacing,
            "the second sync came {:?} after the first was asked for",
            before.elapsed()
        );
        std::thread::sleep(spacing + Duration::from_millis(100));
        assert_eq!(stats.read().syncs, 2, "the commits queued during the spacing took one sync");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_sync_fails_its_groups_and_every_later_write() {
        let missing = std::env::temp_dir().join(format!("pump-syncer-missing-{}", crate::security::random_hex(6)));
        let stats = Arc::new(CommitStats::default());
        let syncer = Syncer::start(missing.join("t.db-wal"), stats.clone(), Duration::ZERO).unwrap();
        let (only, answer) = job();
        syncer.hand_over(vec![only]);
        let answer = answer.blocking_recv().unwrap();
        assert!(matches!(&answer, Err(StoreError::Unavailable(m)) if m.contains("could not sync")), "{answer:?}");
        assert!(matches!(syncer.failure(), Some(StoreError::Unavailable(_))));
        assert_eq!(stats.read().syncs, 0, "a failed sync is not counted");
    }
}
