//! The disk spool of `buffer` mode: request bodies the server could not take, one file each,
//! re-sent oldest first by this process or a later one. Must not hand one file to two senders
//! at once, nor leave a partial or temporary file behind.
//!
//! A file is named `{unix ns:020}-{pid:010}-{seq:010}-n{events}.json`, so names sort in the order
//! the batches were spooled, and holds the exact request body. It is written as `.{name}.tmp`
//! and renamed, so a reader never sees half a file; a write that fails removes its temporary
//! file, and opening a spool removes those of writers that died. Whoever sends a file holds an
//! exclusive lock on it (`flock`: the kernel drops it when the holder dies, so no claim outlives
//! its process) and removes it once delivered. Re-sending is safe because ingest is idempotent.

use crate::lock;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Least time between two counts of the folder's bytes when the cap seems reached (other
/// processes and clients sharing the folder remove what they re-send).
const RECOUNT_AFTER: Duration = Duration::from_millis(250);

/// A temporary file nobody holds a lock on and not written to for this long was left by a
/// writer that died (a write takes milliseconds; the age covers the instant between a writer
/// creating its file and locking it).
const STALE_TMP: Duration = Duration::from_secs(5);

/// One spooled batch, locked for sending.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    file: fs::File,
    path: PathBuf,
    /// Events in it.
    pub(crate) events: u64,
}

/// A spool folder.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seq: AtomicU64,
    /// Bytes spooled as this spool last knew (counted at start and again when the cap seems
    /// reached, kept up to date between), and when they were last counted.
    bytes: Mutex<(u64, Instant)>,
}

fn events_in(name: &str) -> u64 {
    name.rsplit_once("-n")
        .and_then(|(_, rest)| rest.strip_suffix(".json"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A spooled batch's file name (not a temporary one).
fn is_batch(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.')
}

impl Spool {
    /// Opens (creating) the folder and removes what dead writers left in it.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                remove_if_stale(&entry.path());
            }
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            seq: AtomicU64::new(0),
            bytes: Mutex::new((0, Instant::now())),
        };
        lock(&spool.bytes).0 = spool.count_bytes();
        Ok(spool)
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the batches waiting in the folder, oldest first (each to be claimed with
    /// [`Spool::claim`]).
    pub(crate) fn waiting(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| is_batch(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort_unstable();
        names
    }

    /// The bytes of the batches in the folder.
    fn count_bytes(&self) -> u64 {
        self.waiting()
            .iter()
            .map(|n| fs::metadata(self.dir.join(n)).map_or(0, |m| m.len()))
            .sum()
    }

    /// Spools one request body of `events` events. `from_shipper`: on the shipper's thread, it
    /// is synced to the disk, and a folder that seems full is counted again first; a pipeline's
    /// thread does neither (a sync takes hundreds of microseconds, listing the folder more).
    /// `Ok(false)`: the spool is full, nothing written.
    pub(crate) fn write(&self, body: &[u8], events: u64, from_shipper: bool) -> io::Result<bool> {
        let len = body.len() as u64;
        let recount = {
            let bytes = lock(&self.bytes);
            from_shipper && bytes.0 + len > self.max_bytes && bytes.1.elapsed() >= RECOUNT_AFTER
        };
        if recount {
            let counted = self.count_bytes();
            *lock(&self.bytes) = (counted, Instant::now());
        }
        {
            let mut bytes = lock(&self.bytes);
            if bytes.0 + len > self.max_bytes {
                return Ok(false);
            }
            // Reserved, so the file is written without holding the lock (a sync on the
            // shipper's thread must not hold up a pipeline's thread spooling at the same time).
            bytes.0 += len;
        }
        let written = self.put(events, |f| {
            f.write_all(body)?;
            if from_shipper {
                f.sync_data()?;
            }
            Ok(())
        });
        if written.is_err() {
            let mut bytes = lock(&self.bytes);
            bytes.0 = bytes.0.saturating_sub(len);
        }
        written.map(|()| true)
    }

    /// Writes a batch with `fill` under a temporary name, then renames it into the spool; on
    /// failure (a full disk, say) the temporary file is removed.
    fn put(
        &self,
        events: u64,
        fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> io::Result<()> {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{ns:020}-{:010}-{:010}-n{events}.json",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = fs::File::create_new(&tmp)?;
        // Held while writing: a spool opened meanwhile does not take the file for a dead one's.
        let _ = file.try_lock();
        let written = fill(&mut file).and_then(|()| fs::rename(&tmp, self.dir.join(&name)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Whether anything waits in the spool.
    pub(crate) fn is_empty(&self) -> bool {
        fs::read_dir(&self.dir).map_or(true, |mut d| {
            !d.any(|e| e.is_ok_and(|e| is_batch(&e.file_name().to_string_lossy())))
        })
    }

    /// Locks the batch `name` for sending; `None` if another sender has it or it is gone.
    pub(crate) fn claim(&self, name: &str) -> Option<SpoolFile> {
        let path = self.dir.join(name);
        let file = fs::File::open(&path).ok()?;
        file.try_lock().ok()?;
        // Delivered and removed by another sender between our opening it and locking it.
        if file.metadata().ok()?.nlink() == 0 {
            return None;
        }
        Some(SpoolFile {
            file,
            path,
            events: events_in(name),
        })
    }

    /// The body of a claimed batch.
    pub(crate) fn read(&self, claimed: &mut SpoolFile) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        claimed.file.rewind()?;
        claimed.file.read_to_end(&mut body)?;
        Ok(body)
    }

    /// The batch was delivered (or can never be): remove it.
    pub(crate) fn done(&self, claimed: SpoolFile) {
        let len = claimed.file.metadata().map_or(0, |m| m.len());
        if fs::remove_file(&claimed.path).is_ok() {
            let mut bytes = lock(&self.bytes);
            bytes.0 = bytes.0.saturating_sub(len);
        }
    }
}

/// Removes a temporary file if its writer is gone: nobody holds its lock and it is not new.
fn remove_if_stale(path: &Path) {
    let Ok(file) = fs::File::open(path) else {
        return;
    };
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE_TMP));
    if old && file.try_lock().is_ok() {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim_oldest(spool: &Spool) -> Option<SpoolFile> {
        spool.waiting().iter().find_map(|n| spool.claim(n))
    }

    fn files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn batches_come_back_oldest_first_and_respect_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 25).unwrap();
        assert!(spool.is_empty());
        assert!(spool.write(b"first-batch", 3, true).unwrap());
        assert!(spool.write(b"second", 1, false).unwrap());
        assert!(
            !spool.write(b"too-much-for-the-cap", 1, true).unwrap(),
            "over 25 bytes"
        );
        let mut a = claim_oldest(&spool).unwrap();
        assert_eq!(a.events, 3);
        assert_eq!(spool.read(&mut a).unwrap(), b"first-batch");
        let mut b = claim_oldest(&spool).unwrap();
        assert_eq!(spool.read(&mut b).unwrap(), b"second");
        assert!(
            claim_oldest(&spool).is_none(),
            "claimed files are not handed out twice"
        );
        drop(b);
        spool.done(a);
        // A later spool sees what is left.
        let again = Spool::open(dir.path(), 25).unwrap();
        let mut b = claim_oldest(&again).unwrap();
        assert_eq!(again.read(&mut b).unwrap(), b"second");
        again.done(b);
        assert!(again.is_empty());
        assert!(again.write(b"fits-again", 1, true).unwrap());
    }

    #[test]
    fn a_shared_folder_is_counted_again_before_it_is_called_full() {
        let dir = tempfile::tempdir().unwrap();
        let a = Spool::open(dir.path(), 25).unwrap();
        let b = Spool::open(dir.path(), 25).unwrap();
        assert!(a.write(b"first-batch-of-20-by", 1, true).unwrap());
        // `b` re-sends and removes what `a` spooled: `a` is not full any more.
        let file = claim_oldest(&b).unwrap();
        b.done(file);
        std::thread::sleep(RECOUNT_AFTER);
        assert!(a.write(b"second-batch-of-20-b", 1, true).unwrap());
    }

    #[test]
    fn a_batch_being_sent_is_not_handed_to_another_spool_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let a = Spool::open(dir.path(), 1000).unwrap();
        assert!(a.write(b"batch", 1, true).unwrap());
        let claimed = claim_oldest(&a).unwrap();
        // A second client (or process) opens the same folder while `a` sends its batch.
        let b = Spool::open(dir.path(), 1000).unwrap();
        assert!(claim_oldest(&b).is_none(), "still claimed");
        drop(claimed); // not delivered: released (as when its process dies)
        let again = claim_oldest(&b).expect("released");
        b.done(again);
        assert!(a.is_empty());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1000).unwrap();
        let full = spool.put(2, |f| {
            f.write_all(b"{\"events\":[")?;
            Err(io::Error::from(io::ErrorKind::StorageFull))
        });
        assert_eq!(full.unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
        assert!(spool.is_empty());
    }

    #[test]
    fn opening_a_spool_removes_the_temporary_files_of_dead_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir
            .path()
            .join(".00000000000000000001-0000000001-0000000000-n1.json.tmp");
        fs::write(&stale, b"half a ba").unwrap();
        let old = SystemTime::now() - 2 * STALE_TMP;
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        // One being written: locked by its writer, however old.
        let live = dir
            .path()
            .join(".00000000000000000002-0000000001-0000000001-n1.json.tmp");
        fs::write(&live, b"being writ").unwrap();
        let writer = fs::File::options().write(true).open(&live).unwrap();
        writer.set_modified(old).unwrap();
        writer.try_lock().unwrap();
        // One just created, its writer about to lock it.
        let new = dir
            .path()
            .join(".00000000000000000003-0000000001-0000000002-n1.json.tmp");
        fs::write(&new, b"").unwrap();

        let spool = Spool::open(dir.path(), 1000).unwrap();
        assert!(!stale.exists(), "a dead writer's file is removed");
        assert!(live.exists() && new.exists(), "{:?}", files(dir.path()));
        assert!(spool.is_empty(), "temporary files are not batches");
        drop(writer);
    }
}
