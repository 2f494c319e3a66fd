//! Whether a text lies in the program's own read-only memory: its string literals (`"price_too_high"`),
//! whose bytes can never change while the program runs. A rejection reason given as a literal
//! is then known again by its address alone, without reading its text; any other text (a
//! `String`, whose buffer may later hold other words at the same address) is compared.
//!
//! The read-only segments are those the loader mapped without write access for the main
//! program (read with `dl_iterate_phdr` once, on first use). Texts of libraries loaded later, of
//! the heap or of the stack are never taken for literals; on systems other than Linux nothing
//! is, which only costs the comparison.

use once_cell::sync::Lazy;

/// The main program's read-only segments, as `(start, end)` addresses.
static READ_ONLY: Lazy<Vec<(usize, usize)>> = Lazy::new(read_only_segments);

/// Whether all of `text` lies in one of the main program's read-only segments.
pub(crate) fn is_literal(text: &str) -> bool {
    let start = text.as_ptr() as usize;
    let Some(end) = start.checked_add(text.len()) else {
        return false;
    };
    READ_ONLY.iter().any(|&(s, e)| s <= start && end <= e)
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
        // SAFETY: `data` is the `Vec` passed below, borrowed for the whole walk; `info` and its
        // program headers are valid during the callback (dl_iterate_phdr's contract).
        let (out, info) = unsafe { (&mut *data.cast::<Vec<(usize, usize)>>(), &*info) };
        if info.dlpi_phdr.is_null() {
            return 1;
        }
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        for h in headers {
            if h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0 {
                let start = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
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
