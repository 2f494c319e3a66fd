//! Whether a text lies in the program's own read-only memory: its string literals
//! (`"price_too_high"`), whose bytes can never change while the program runs. A rejection reason
//! given as a literal is then known again by its address alone, without reading its text; any
//! other text (a `String`, whose buffer may later hold other words at the same address) is
//! compared.
//!
//! Only the main executable counts: the segments the loader mapped for it without write access,
//! read with `dl_iterate_phdr` once (when the first client is made, or on first use). Texts of
//! shared libraries (whose memory `dlclose` can unmap and reuse: a crate built into a Python
//! extension, say), of the heap or of the stack are never taken for literals; on systems other
//! than Linux nothing is. That only costs the comparison.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Read-only segments kept (a program has two or three).
const MAX_SEGMENTS: usize = 8;

/// The main program's read-only segments, as `(start, end)` addresses; `end` 0 past the last.
static SEGMENTS: [(AtomicUsize, AtomicUsize); MAX_SEGMENTS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_SEGMENTS];

/// Whether [`SEGMENTS`] is read: not yet, being read, or read.
static STATE: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = 0;
const READING: u8 = 1;
const READ: u8 = 2;

/// Reads the program's read-only segments if nobody has yet; true once they are read. Never
/// waits: while another thread reads them (or forever, in a child forked meanwhile), no text is
/// taken for a literal.
pub(crate) fn read_segments() -> bool {
    match STATE.load(Ordering::Acquire) {
        READ => true,
        UNREAD => {
            if STATE
                .compare_exchange(UNREAD, READING, Ordering::Acquire, Ordering::Acquire)
                .is_err()
            {
                return STATE.load(Ordering::Acquire) == READ;
            }
            for (slot, (start, end)) in SEGMENTS.iter().zip(read_only_segments()) {
                slot.0.store(start, Ordering::Relaxed);
                slot.1.store(end, Ordering::Relaxed);
            }
            STATE.store(READ, Ordering::Release);
            true
        }
        _ => false,
    }
}

/// Whether all of `text` lies in one of the main program's read-only segments.
pub(crate) fn is_literal(text: &str) -> bool {
    if !read_segments() {
        return false;
    }
    let start = text.as_ptr() as usize;
    let Some(end) = start.checked_add(text.len()) else {
        return false;
    };
    SEGMENTS
        .iter()
        .map(|(s, e)| (s.load(Ordering::Relaxed), e.load(Ordering::Relaxed)))
        .take_while(|&(_, e)| e != 0)
        .any(|(s, e)| s <= start && end <= e)
}

/// The segments the loader mapped without write access for the main program (the first
/// object `dl_iterate_phdr` reports).
#[cfg(target_os = "linux")]
fn read_only_segments() -> Vec<(usize, usize)> {
    /// Collects the first object's read-only `PT_LOAD` segments, then stops the walk.
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Vec` passed below, borrowed for the whole walk; `info` is valid
        // during the callback (dl_iterate_phdr's contract): only the fields every libc has are
        // read from it.
        let (out, addr, phdr, phnum) = unsafe {
            (
                &mut *data.cast::<Vec<(usize, usize)>>(),
                (*info).dlpi_addr,
                (*info).dlpi_phdr,
                (*info).dlpi_phnum,
            )
        };
        if phdr.is_null() {
            return 1;
        }
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
        let headers = unsafe { std::slice::from_raw_parts(phdr, phnum.into()) };
        for h in headers {
            if h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0 {
                let start = (addr as usize).wrapping_add(h.p_vaddr as usize);
                if let Some(end) = start.checked_add(h.p_memsz as usize) {
                    out.push((start, end));
                }
            }
        }
        1
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    // SAFETY: `first` matches the callback type, does not unwind, and only touches `out`
    // through `data` while the walk runs.
    unsafe {
        libc::dl_iterate_phdr(Some(first), (&mut out as *mut Vec<(usize, usize)>).cast());
    }
    out
}

/// No segments known: every text is compared.
#[cfg(not(target_os = "linux"))]
fn read_only_segments() -> Vec<(usize, usize)> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Immutable bytes the compiler places among the program's read-only data.
    static TABLE: [u8; 16] = *b"in_the_table____";

    #[test]
    #[cfg(target_os = "linux")]
    fn literals_are_literals() {
        assert!(is_literal("price_too_high"));
        let table = std::str::from_utf8(&TABLE).expect("ascii");
        assert!(is_literal(&table[3..9]));
    }

    #[test]
    fn texts_that_can_change_are_not() {
        let owned = String::from("price_too_high");
        assert!(!is_literal(&owned));
        let leaked: &'static str = Box::leak(String::from("leaked").into_boxed_str());
        assert!(!is_literal(leaked));
        let stack = *b"on_the_stack";
        assert!(!is_literal(std::str::from_utf8(&stack).expect("ascii")));
    }
}
