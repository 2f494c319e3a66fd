//! The disk spool of `buffer` mode: batches the server could not take, one file each, re-sent
//! oldest first by this process or a later one.
//!
//! A file is named `{unix ns:020}-{pid:010}-{seq:010}-n{events}.json`, so names sort in the order
//! the batches were spooled, and holds the exact request body. It is written under a temporary
//! name and renamed, so a reader never sees half a file. Before sending one, a process renames it
//! to `….json.claimed-{pid}`, so two processes never send the same file at once; a claim left by a
//! process that died is released at start-up. Re-sending is safe because ingest is idempotent.

use super::lock;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The claim tokens of the spools this process has open: a claim with this process's pid but
/// another token was left by an earlier process that had the same pid.
static OURS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Least time between two counts of the folder's bytes when the cap seems reached (other
/// processes and clients sharing the folder remove what they re-send).
const RECOUNT_AFTER: Duration = Duration::from_millis(250);

/// One spooled batch.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    /// Its name in the spool (before the claim).
    name: String,
    /// Where it is now (claimed).
    path: PathBuf,
    /// Where it was before the claim.
    original: PathBuf,
    /// Events in it.
    pub(crate) events: u64,
}

/// A spool folder.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seq: AtomicU64,
    /// `{pid}-{random}`: tells this process's claims from those of an earlier process that had
    /// the same pid (a container's pid 1 after a restart).
    claimant: String,
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

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

impl SpoolFile {
    /// Its name in the spool.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Spool {
    /// Opens (creating) the folder and releases claims of dead processes.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let claimant = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let mut ours = lock(&OURS);
        for entry in fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((original, owner)) = name.split_once(".claimed-") {
                let pid = owner.split('-').next().and_then(|p| p.parse::<i32>().ok());
                let this_process = pid == i32::try_from(std::process::id()).ok();
                // Dead owner, or our own pid from an earlier life (a token no spool of this
                // process has: another spool open here on the same folder is not stale).
                let stale = pid.is_none_or(|p| !pid_alive(p))
                    || (this_process && !ours.iter().any(|t| t == owner));
                if stale {
                    let _ = fs::rename(entry.path(), dir.join(original));
                }
            }
        }
        ours.push(claimant.clone());
        drop(ours);
        let spool = Spool {
            claimant,
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

    /// The bytes of the batches in the folder, claimed or not.
    fn count_bytes(&self) -> u64 {
        fs::read_dir(&self.dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !name.starts_with('.')
                        && (name.ends_with(".json") || name.contains(".json.claimed-"))
                })
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
    }

    /// Spools one request body of `events` events. `from_shipper`: on the shipper's thread, it
    /// is synced to the disk, and a folder that seems full is counted again first; a pipeline's
    /// thread does neither (a sync takes hundreds of microseconds, listing the folder more).
    /// `Ok(false)`: the spool is full, nothing written.
    pub(crate) fn write(&self, body: &[u8], events: u64, from_shipper: bool) -> io::Result<bool> {
        let len = body.len() as u64;
        let recount = {
            let bytes = lock(&self.bytes);
            // Other processes and clients sharing the folder may have re-sent and removed
            // batches since: the shipper's thread counts again rather than refuse on an old
            // figure (not a pipeline's thread: listing the folder takes time), without the lock.
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
        let written = self.write_file(body, events, from_shipper);
        if written.is_err() {
            let mut bytes = lock(&self.bytes);
            bytes.0 = bytes.0.saturating_sub(len);
        }
        written.map(|()| true)
    }

    /// Writes a batch under a temporary name, then renames it into the spool.
    fn write_file(&self, body: &[u8], events: u64, durable: bool) -> io::Result<()> {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{ns:020}-{:010}-{:010}-n{events}.json",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(body)?;
        if durable {
            f.sync_data()?;
        }
        fs::rename(&tmp, self.dir.join(&name))
    }

    /// Whether anything waits in the spool.
    pub(crate) fn is_empty(&self) -> bool {
        self.oldest_name().is_none()
    }

    fn oldest_name(&self) -> Option<String> {
        fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .min()
    }

    /// Claims the oldest spooled batch, if any.
    pub(crate) fn claim_oldest(&self) -> Option<SpoolFile> {
        // Another process may claim the same file first: then try the next one.
        for _ in 0..16 {
            let name = self.oldest_name()?;
            let original = self.dir.join(&name);
            let path = self.dir.join(format!("{name}.claimed-{}", self.claimant));
            if fs::rename(&original, &path).is_ok() {
                return Some(SpoolFile {
                    events: events_in(&name),
                    name,
                    path,
                    original,
                });
            }
        }
        None
    }

    /// The body of a claimed batch.
    pub(crate) fn read(&self, file: &SpoolFile) -> io::Result<Vec<u8>> {
        fs::read(&file.path)
    }

    /// The batch was delivered (or can never be): remove it.
    pub(crate) fn done(&self, file: SpoolFile) {
        let len = fs::metadata(&file.path).map_or(0, |m| m.len());
        if fs::remove_file(&file.path).is_ok() {
            let mut bytes = lock(&self.bytes);
            bytes.0 = bytes.0.saturating_sub(len);
        }
    }

    /// The batch could not be delivered now: put it back, still first in line.
    pub(crate) fn release(&self, file: SpoolFile) {
        let _ = fs::rename(&file.path, &file.original);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Its claims are no longer held by a live spool: a later one may release them.
        lock(&OURS).retain(|token| *token != self.claimant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let a = spool.claim_oldest().unwrap();
        assert_eq!(a.events, 3);
        assert_eq!(spool.read(&a).unwrap(), b"first-batch");
        let b = spool.claim_oldest().unwrap();
        assert_eq!(spool.read(&b).unwrap(), b"second");
        assert!(
            spool.claim_oldest().is_none(),
            "claimed files are not handed out twice"
        );
        spool.release(b);
        spool.done(a);
        // A later process sees what is left, and its claims of the dead are released.
        let again = Spool::open(dir.path(), 25).unwrap();
        let b = again.claim_oldest().unwrap();
        assert_eq!(again.read(&b).unwrap(), b"second");
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
        let file = b.claim_oldest().unwrap();
        b.done(file);
        std::thread::sleep(RECOUNT_AFTER);
        assert!(a.write(b"second-batch-of-20-b", 1, true).unwrap());
    }

    #[test]
    fn another_spool_of_this_process_keeps_its_claims() {
        let dir = tempfile::tempdir().unwrap();
        let a = Spool::open(dir.path(), 1000).unwrap();
        assert!(a.write(b"batch", 1, true).unwrap());
        let claimed = a.claim_oldest().unwrap();
        // A second client of this process opens the same folder while `a` sends its batch.
        let b = Spool::open(dir.path(), 1000).unwrap();
        assert!(b.claim_oldest().is_none(), "still claimed by a live spool");
        a.done(claimed);
        assert!(b.is_empty());
    }
}
