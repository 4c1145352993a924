//! The only place the log touches memory-mapped bytes directly.
//!
//! # Contract
//!
//! A [`Mapping`] maps one segment file shared and writable. Rust's aliasing
//! rules are upheld inside this process by ownership: the only way to the
//! bytes is [`Mapping::bytes`] (`&self`) and [`Mapping::bytes_mut`]
//! (`&mut self`), and the `Log` owns its mappings, so the borrow checker keeps
//! readers and the writer apart. The [`Flusher`] handed to sync jobs on other
//! threads shares the mapping but only ever passes its address to `msync`; it
//! never forms a reference to the bytes.
//!
//! What the borrow checker cannot see is another mapping of the same file. The
//! log takes an exclusive lock on its folder (see `lock.rs`) so that no second
//! `Log`, in this process or another, maps the same segments; tools that only
//! read (`inspect`) read the files with `read(2)` instead of mapping them.
//! Truncating a mapped segment file from outside would make the next access
//! raise SIGBUS: that is the usual memory-map caveat and is documented on the
//! crate; it is not a memory-safety hole in Rust terms (memmap2 documents the
//! same for `MmapRaw`).

use std::fs::File;
use std::io;
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

/// Page size assumed when pre-faulting: touching one byte per 4 KiB is enough
/// on every page size Linux uses (larger pages are just touched more than once).
const PAGE: usize = 4096;

/// A writable shared mapping of a whole segment file.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: Arc<MmapRaw>,
}

impl Mapping {
    /// Maps the first `len` bytes of `file`, which must be open read-write and
    /// at least `len` long. With `populate`, the kernel reads the pages in at
    /// map time (`MAP_POPULATE`).
    pub(crate) fn map(file: &File, len: usize, populate: bool) -> io::Result<Self> {
        let mut options = MmapOptions::new();
        options.len(len);
        if populate {
            options.populate();
        }
        let raw = options.map_raw(file)?;
        Ok(Mapping { raw: Arc::new(raw) })
    }

    /// Length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the pointer and length come from a live mapping that `self`
        // keeps alive (the `Arc`). No `&mut` to these bytes can exist while
        // this `&[u8]` lives, because `bytes_mut` needs `&mut self` and no other
        // code in this crate forms references into the mapping (see the module
        // contract: `Flusher` only passes the address to msync). The bytes are
        // always initialised (file-backed pages read as zeros past the data).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), self.raw.len()) }
    }

    /// The mapped bytes, for writing.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only reference
        // into the mapping for its lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.raw.as_mut_ptr(), self.raw.len()) }
    }

    /// Writes one byte in every page from `from` on, so that the kernel
    /// allocates the pages and maps them writable now rather than on the
    /// append path. The bytes written are the ones already there.
    pub(crate) fn prefault_writable(&mut self, from: usize) {
        let bytes = self.bytes_mut();
        let mut pos = from;
        while pos < bytes.len() {
            let byte: &mut u8 = &mut bytes[pos];
            let value = *byte;
            // SAFETY: `byte` is a valid, aligned, exclusive reference. A
            // volatile write is used only so that the compiler cannot drop
            // what looks like a no-op store: the store is the point, because
            // it is what makes the kernel take the write fault now.
            unsafe { std::ptr::write_volatile(byte, value) };
            pos = (pos / PAGE + 1) * PAGE;
        }
    }

    /// A handle that can msync this mapping from another thread.
    pub(crate) fn flusher(&self) -> Flusher {
        Flusher {
            raw: Arc::clone(&self.raw),
        }
    }
}

/// A shared handle on a mapping that can only flush it.
#[derive(Debug, Clone)]
pub(crate) struct Flusher {
    raw: Arc<MmapRaw>,
}

impl Flusher {
    /// `msync(MS_SYNC)` of `len` bytes at `offset` (within the mapping). On
    /// Linux this writes the dirty pages and the metadata needed to read them
    /// back, like `fdatasync` of that range.
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.raw.flush_range(offset, len)
    }

    /// Length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}
