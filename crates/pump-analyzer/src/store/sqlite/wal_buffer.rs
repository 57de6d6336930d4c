//! A thin SQLite VFS over the platform's default one that coalesces the writes of a commit to
//! the write-ahead log into one system call.
//!
//! Why: SQLite appends a commit to the WAL frame by frame, and each frame with two `pwrite`s
//! (24-byte header, then the page). A group commit of ingest touches ~40–80 pages, so the
//! writer thread spent more time in `pwrite` than in SQLite itself (`strace -c`: ~150 `pwrite`s
//! per `fsync`; `perf`: a quarter of the server's CPU under ingest load). No SQLite setting
//! batches these writes, hence this shim; everything but the WAL file's writes passes through
//! untouched (other files are opened by the default VFS itself).
//!
//! How: writes to a WAL file that continue the previous one are appended to a buffer; any other
//! operation on that file — `xSync` first of all, but also reads, truncation, size queries,
//! locks, file controls and close — writes the buffer out before it runs, and so does a write
//! elsewhere in the file or a buffer past [`FLUSH_AT`]. SQLite makes a commit visible to
//! readers only after it has synced the WAL (we run with `synchronous=FULL`), so no reader can
//! see a frame that is still in the buffer, and an acknowledged commit is on disk exactly as
//! without the shim. Only the writer connection opens its database through this VFS.
//!
//! The shim also lets the writer defer a commit's sync ([`defer_commit_syncs`]): the buffer is
//! written out as for a sync, so the commit is in the kernel's hands (safe from `kill -9`), and
//! the writer's syncer thread syncs the file afterwards (before anyone is answered with
//! `SQLITE_SYNC=full`).

use std::cell::Cell;
use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the VFS is registered under.
pub const NAME: &CStr = c"pump-wal-buffer";

/// A buffer this large is written out without waiting for the sync.
const FLUSH_AT: usize = 1 << 20;

/// Largest single write handed to the default VFS: the unix VFS masks write sizes to 17 bits
/// (`nBuf &= 0x1ffff` in `seekAndWriteFd`), so anything from 128 KiB up would be cut short.
const CHUNK: usize = 120 * 1024;

/// Our file object. SQLite allocates `szOsFile` bytes for it; the default VFS's own file object
/// lives right behind it in the same allocation.
#[repr(C)]
struct BufferedFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    buffer: Vec<u8>,
    /// File offset of `buffer[0]`.
    start: i64,
}

/// Registers the VFS once per process; `Err` carries SQLite's result code.
pub fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS, which lives for the whole
        // process. The VFS object built here is leaked on purpose: SQLite keeps a pointer to it
        // for as long as the process runs.
        unsafe {
            let real = ffi::sqlite3_vfs_find(ptr::null());
            if real.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut vfs = *real;
            vfs.szOsFile =
                c_int::try_from(size_of::<BufferedFile>()).map_err(|_| ffi::SQLITE_ERROR)? + (*real).szOsFile;
            vfs.pNext = ptr::null_mut();
            vfs.zName = NAME.as_ptr();
            vfs.pAppData = real.cast::<c_void>();
            vfs.xOpen = Some(open);
            let vfs = Box::leak(Box::new(vfs));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rc),
            }
        }
    })
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: a WAL file is never memory-mapped nor used for shared memory.
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// The VFS we wrap.
unsafe fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: `register` stored the default VFS in `pAppData`.
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands us `szOsFile` bytes at `file`, enough for a `BufferedFile` followed
    // by the default VFS's file object (`size_of::<BufferedFile>()` keeps that one aligned).
    unsafe {
        let real = real_vfs(vfs);
        let Some(real_open) = (*real).xOpen else { return ffi::SQLITE_ERROR };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL file: the default VFS's object takes our place.
            return real_open(real, name, file, flags, out_flags);
        }
        let inner = file.cast::<u8>().add(size_of::<BufferedFile>()).cast::<ffi::sqlite3_file>();
        (*inner).pMethods = ptr::null();
        let rc = real_open(real, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if let Some(methods) = (*inner).pMethods.as_ref()
                && let Some(real_close) = methods.xClose
            {
                real_close(inner);
            }
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<BufferedFile>(),
            BufferedFile { base: ffi::sqlite3_file { pMethods: &METHODS }, real: inner, buffer: Vec::new(), start: 0 },
        );
        ffi::SQLITE_OK
    }
}

/// Our file object behind SQLite's pointer.
unsafe fn this<'a>(file: *mut ffi::sqlite3_file) -> &'a mut BufferedFile {
    // SAFETY: only files opened by `open` with our methods reach the functions below.
    unsafe { &mut *file.cast::<BufferedFile>() }
}

/// The default VFS's methods of the wrapped file.
unsafe fn real_methods(file: &BufferedFile) -> &ffi::sqlite3_io_methods {
    // SAFETY: a successful open always sets the methods.
    unsafe { &*(*file.real).pMethods }
}

/// Writes the buffer out, in as few calls as the default VFS allows.
unsafe fn flush(file: &mut BufferedFile) -> c_int {
    if file.buffer.is_empty() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: `file.real` is the open wrapped file; each chunk is at most CHUNK bytes.
    unsafe {
        let Some(real_write) = real_methods(file).xWrite else { return ffi::SQLITE_IOERR_WRITE };
        let mut offset = file.start;
        let mut rc = ffi::SQLITE_OK;
        for chunk in file.buffer.chunks(CHUNK) {
            // CHUNK fits a c_int and an i64.
            rc = real_write(file.real, chunk.as_ptr().cast(), chunk.len() as c_int, offset);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        file.buffer.clear();
        rc
    }
}

/// Defines a method of our file that writes the buffer out, then calls the wrapped file's own
/// method with the same arguments (`$missing` when the wrapped file has none).
macro_rules! flush_then {
    ($name:ident, $method:ident, $missing:expr, $($arg:ident: $ty:ty),*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: only files opened by `open` with our methods get here; SQLite's
            // arguments are passed on unchanged.
            unsafe {
                let this = this(file);
                match flush(this) {
                    ffi::SQLITE_OK => match real_methods(this).$method {
                        Some(real) => real(this.real, $($arg),*),
                        None => $missing,
                    },
                    rc => rc,
                }
            }
        }
    };
}

flush_then!(read, xRead, ffi::SQLITE_IOERR_READ, out: *mut c_void, amount: c_int, offset: i64);
flush_then!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size: i64);
flush_then!(synced, xSync, ffi::SQLITE_IOERR_FSYNC, flags: c_int);

thread_local! {
    /// Set by the writer thread around a COMMIT whose sync it leaves to its syncer thread.
    static DEFER: Cell<bool> = const { Cell::new(false) };
    /// Whether a commit sync was left undone since the last [`take_deferred`].
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// While `on`, a commit's sync of the WAL on this thread writes the buffer out but does not
/// sync: the caller syncs the file itself (any descriptor of it will do) before it answers
/// anyone. Syncs of a checkpoint or of a new WAL header are never deferred; they reach this VFS
/// with `SQLITE_SYNC_FULL` because the writer runs with `checkpoint_fullfsync=ON`, while a
/// commit's sync comes with `SQLITE_SYNC_NORMAL` (`WAL_SYNC_FLAGS` and `CKPT_SYNC_FLAGS` in
/// SQLite's `wal.c`).
pub fn defer_commit_syncs(on: bool) {
    DEFER.set(on);
}

/// Whether a commit sync was deferred on this thread since the last call.
pub fn take_deferred() -> bool {
    DEFERRED.replace(false)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    if flags & 0x0f == ffi::SQLITE_SYNC_NORMAL && DEFER.get() {
        // SAFETY: only files opened by `open` with our methods get here.
        let rc = unsafe { flush(this(file)) };
        if rc == ffi::SQLITE_OK {
            DEFERRED.set(true);
        }
        return rc;
    }
    // SAFETY: as above; SQLite's arguments are passed on unchanged.
    unsafe { synced(file, flags) }
}

flush_then!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, size: *mut i64);
flush_then!(lock, xLock, ffi::SQLITE_IOERR_LOCK, level: c_int);
flush_then!(unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level: c_int);
flush_then!(file_control, xFileControl, ffi::SQLITE_NOTFOUND, op: c_int, arg: *mut c_void);

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once; the buffer is dropped here and never touched again.
    unsafe {
        let this = this(file);
        let flushed = flush(this);
        let closed = real_methods(this).xClose.map_or(ffi::SQLITE_OK, |real_close| real_close(this.real));
        ptr::drop_in_place(&mut this.buffer);
        if flushed != ffi::SQLITE_OK { flushed } else { closed }
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    unsafe {
        let this = this(file);
        let Ok(len) = usize::try_from(amount) else { return ffi::SQLITE_IOERR_WRITE };
        if !this.buffer.is_empty() && offset != this.start + this.buffer.len() as i64 {
            let rc = flush(this);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if this.buffer.is_empty() {
            this.start = offset;
        }
        this.buffer.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
        if this.buffer.len() >= FLUSH_AT { flush(this) } else { ffi::SQLITE_OK }
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: passed on unchanged.
    unsafe {
        let this = this(file);
        match real_methods(this).xCheckReservedLock {
            Some(f) => f(this.real, out),
            None => ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        }
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: passed on unchanged.
    unsafe {
        let this = this(file);
        real_methods(this).xSectorSize.map_or(4096, |f| f(this.real))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: passed on unchanged.
    unsafe {
        let this = this(file);
        real_methods(this).xDeviceCharacteristics.map_or(0, |f| f(this.real))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    /// A fresh directory under the system's temporary one, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("pump-walbuf-{}", crate::security::random_hex(6)));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(path: &std::path::Path) -> Connection {
        register().unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags_and_vfs(path, flags, NAME).unwrap();
        conn.pragma_update(None, "page_size", 1024).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn
    }

    #[test]
    fn commits_are_visible_to_plain_readers_and_survive_reopening() {
        let dir = Scratch::new();
        let path = dir.0.join("t.db");
        let writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (v);")
            .unwrap();
        // A reader on the default VFS, as the server's read pool and the tests use.
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut expected = 0i64;
        for round in 0..200i64 {
            let tx = writer.unchecked_transaction().unwrap();
            // Rounds of very different sizes: some fit a frame, some overflow FLUSH_AT.
            let rows = if round % 50 == 0 { 3000 } else { 1 + round % 7 };
            for i in 0..rows {
                tx.execute(
                    "INSERT INTO t (v) VALUES (?1)",
                    [format!("{round}-{i}-{}", "x".repeat((i % 300) as usize))],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            expected += rows;
            let seen: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(seen, expected, "round {round}");
        }
        // A checkpoint reads the WAL back through the shim.
        let (busy, _, _): (i64, i64, i64) =
            writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert_eq!(busy, 0);
        writer.execute("INSERT INTO t (v) VALUES ('after checkpoint')", []).unwrap();
        drop(reader);
        drop(writer);
        let again = Connection::open(&path).unwrap();
        let count: i64 = again.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(count, expected + 1);
        let check: String = again.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_rolled_back_transaction_leaves_nothing_behind() {
        let dir = Scratch::new();
        let path = dir.0.join("t.db");
        let writer = open(&path);
        // A small cache makes the big transaction spill frames to the WAL before its rollback.
        writer.pragma_update(None, "cache_size", 10).unwrap();
        writer.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)").unwrap();
        writer.execute("INSERT INTO t (v) VALUES ('kept')", []).unwrap();
        let tx = writer.unchecked_transaction().unwrap();
        for i in 0..5000 {
            tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("dropped {i} {}", "y".repeat(200))]).unwrap();
        }
        tx.rollback().unwrap();
        writer.execute("INSERT INTO t (v) VALUES ('also kept')", []).unwrap();
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let values: Vec<String> = reader
            .prepare("SELECT v FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(values, ["kept", "also kept"]);
        let check: String = reader.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    /// With deferral on, a commit's sync is left to the caller but its frames are written out
    /// (a plain reader sees the commit); a checkpoint's sync never is, as long as the connection
    /// runs with `checkpoint_fullfsync=ON`, which is what tells the two apart.
    #[test]
    fn only_commit_syncs_are_deferred() {
        let dir = Scratch::new();
        let path = dir.0.join("t.db");
        let writer = open(&path);
        writer.pragma_update(None, "checkpoint_fullfsync", "ON").unwrap();
        writer.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)").unwrap();
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let rows = || -> i64 { reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap() };
        let checkpoint = || {
            writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)).unwrap();
        };
        take_deferred();
        defer_commit_syncs(true);
        writer.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap();
        assert!(take_deferred(), "a commit's sync is left to the caller");
        assert_eq!(rows(), 1);
        checkpoint();
        assert!(!take_deferred(), "a checkpoint syncs the log itself");

        // Without checkpoint_fullfsync a checkpoint's sync looks like a commit's.
        writer.pragma_update(None, "checkpoint_fullfsync", "OFF").unwrap();
        writer.execute("INSERT INTO t (v) VALUES ('b')", []).unwrap();
        take_deferred();
        checkpoint();
        assert!(take_deferred());

        defer_commit_syncs(false);
        writer.execute("INSERT INTO t (v) VALUES ('c')", []).unwrap();
        assert!(!take_deferred(), "deferral is off again");
        assert_eq!(rows(), 3);
    }
}
