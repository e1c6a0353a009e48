//! The allocator of the `facto` binary (and of the benches that measure it): mimalloc for the
//! many small allocations of JSON and ledger records (glibc's allocator is slow for them), the
//! system's for the large ones (1 MiB and more), which glibc maps fresh from the kernel. A large
//! zeroed buffer that is mostly never written then costs memory only for the pages written:
//! sled allocates about 7 MiB of them per ledger (its page table and metrics). Under mimalloc
//! alone, such a buffer carved from memory freed earlier was zeroed by hand, every page of it
//! resident: 6.5 MiB per tenant of a deployment.

use std::alloc::{GlobalAlloc, Layout, System};

/// From this size on, an allocation is the system allocator's.
const LARGE: usize = 1 << 20;

/// Whether the system allocator serves an allocation of this layout (decided on the layout
/// alone, so the one that allocated is the one that frees).
fn large(l: Layout) -> bool {
    l.size() >= LARGE && l.align() <= 4096
}

/// glibc maps every allocation of [`LARGE`] bytes or more on its own, instead of raising that
/// threshold as large blocks are freed (then a zeroed one would come from its heap, written).
pub fn large_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(LARGE).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a parameter of glibc's allocator; no memory is touched.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        }
    }
}

/// The process's allocator (see the module): `#[global_allocator] static A: Allocator = Allocator;`.
pub struct Allocator;

// SAFETY: every call goes to mimalloc or to the system allocator by the layout alone, so a
// block is always freed or resized by the allocator that made it; a resize that crosses
// [`LARGE`] allocates with the other one, copies, and frees the old block.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe {
            if large(l) {
                System.alloc(l)
            } else {
                mimalloc::MiMalloc.alloc(l)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if large(l) {
                System.alloc_zeroed(l)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(l)
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated with `l`, so by the allocator `large(l)` names.
        unsafe {
            if large(l) {
                System.dealloc(p, l);
            } else {
                mimalloc::MiMalloc.dealloc(p, l);
            }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to `l.align()`, fits a layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        // SAFETY: `p` is a block of layout `l` from the allocator `large(l)` names; a new block
        // is made before the old one is copied and freed.
        unsafe {
            match (large(l), large(new)) {
                (true, true) => System.realloc(p, l, new_size),
                (false, false) => mimalloc::MiMalloc.realloc(p, l, new_size),
                _ => {
                    let q = self.alloc(new);
                    if !q.is_null() {
                        std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                        self.dealloc(p, l);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_keep_their_bytes_across_the_threshold_both_ways() {
        let mut v: Vec<u8> = (0..=255u8).cycle().take(super::LARGE - 10).collect();
        v.extend((0..=255u8).cycle().take(20));
        assert!(v.capacity() >= super::LARGE);
        v.truncate(1000);
        v.shrink_to_fit();
        assert!(v.iter().zip((0..=255u8).cycle()).all(|(a, b)| *a == b));
        let z = vec![0u8; 4 * super::LARGE];
        assert!(z.iter().all(|b| *b == 0));
        let big: Vec<u64> = Vec::with_capacity(super::LARGE);
        assert_eq!(big.capacity(), super::LARGE);
    }
}
