//! SQLite's memory allocations through mimalloc, the allocator the rest of the server uses.
//!
//! Why: SQLite allocates through the C library's `malloc` unless told otherwise, and glibc's
//! `malloc`/`free` were ~5 % of the instructions the writer thread runs per single-bet request
//! (`scripts/bench-instructions.sh 1 10`). SQLite allows a replacement allocator only through
//! `sqlite3_config(SQLITE_CONFIG_MALLOC)` before it initializes, hence this module.

use std::ffi::{c_int, c_void};
use std::sync::Once;

use rusqlite::ffi;

unsafe extern "C" {
    // Part of the mimalloc library that `libmimalloc-sys` links, declared there only behind its
    // `extended` feature (which pulls in another crate for C types).
    fn mi_usable_size(p: *const c_void) -> usize;
}

unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    // SQLite never asks for a negative size; a failure returns null, as SQLite expects.
    unsafe { libmimalloc_sys::mi_malloc(usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: SQLite frees only what `malloc`/`realloc` above returned.
    unsafe { libmimalloc_sys::mi_free(p) }
}

unsafe extern "C" fn realloc(p: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as for `free`.
    unsafe { libmimalloc_sys::mi_realloc(p, usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    // SAFETY: as for `free`. SQLite's allocations are limited far below `c_int::MAX`.
    unsafe { c_int::try_from(mi_usable_size(p)).unwrap_or(c_int::MAX) }
}

unsafe extern "C" fn roundup(size: c_int) -> c_int {
    // What SQLite's own allocator does: round up to a multiple of 8.
    size.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Installs mimalloc as SQLite's allocator, once per process, if SQLite has not initialized
/// yet (otherwise SQLite refuses the change and keeps its allocator, which is only slower).
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a `sqlite3_mem_methods`, which SQLite
        // copies before returning.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(code = rc, "SQLite keeps its own allocator (it was initialized before)");
        }
    });
}
