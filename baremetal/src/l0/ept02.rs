//! The page pool EPT02 is built in (`vmcs_nested_vmx::nested_ept::Ept02`): L0's own pages,
//! identity-mapped.

use vmcs_nested_vmx::nested_ept::TablePages;

const PAGES: usize = 64;
#[repr(C, align(4096))]
struct Pages([[u64; 512]; PAGES]);
static mut POOL: Pages = Pages([[0; 512]; PAGES]);

/// The pool; only one exists (L0 creates it once).
pub struct Pool;

impl TablePages for Pool {
    fn count(&self) -> usize {
        PAGES
    }
    fn table(&mut self, index: usize) -> &mut [u64; 512] {
        // SAFETY: the one Pool owns the pages; `&mut self` makes the borrow unique.
        unsafe { &mut crate::cpu::unique(&raw mut POOL).0[index % PAGES] }
    }
    fn phys(&self, index: usize) -> u64 {
        (&raw const POOL) as u64 + 0x1000 * (index % PAGES) as u64
    }
}
