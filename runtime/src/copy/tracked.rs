//! [`Tracked`]: a vmcs12 that knows what changed since each dirty-tracked entry was last copied
//! into vmcs02, and whether the lazy (deferred) sets still owe it vmcs02's values.

use crate::access::{VmcsError, VmcsRead, VmcsWrite};

use super::{DIRTY_SETS, DIRTY_WORDS, dirtied_by, lazy_bit};

/// A vmcs12 with per-entry dirty bits (one per entry of the `dirty` sets, `DIRTY_BITS` in all).
///
/// - L1's VMWRITEs go through [`VmcsWrite`]: they set the bits of every tracked entry that reads
///   the field's value (its own copy, a hook input), changed or not.
/// - L0's writes after an exit go through [`Tracked::write_l0`] (dirties what a changed value
///   affects) or, when vmcs02 already holds the value, [`Tracked::write_untracked`].
/// - A dirty set copies an entry when its bit is set or a predicate or vmcs12 control bit it
///   depends on (condition, hook input) changed value since the set last completed ([`Tracked::changed_since`]),
///   then clears the bit. So a write of a control field that leaves those bits alone copies nothing.
#[derive(Clone, Copy, Debug)]
pub struct Tracked<L> {
    layout: L,
    dirty: [u64; DIRTY_WORDS],
    /// Per dirty set: the predicate and control-bit values it last ran with.
    seen: [u64; DIRTY_SETS],
    /// An exit left the lazy sets (`runs = "lazy"`) pending.
    lazy: bool,
}

impl<L> Tracked<L> {
    /// A vmcs12 just loaded (VMPTRLD) or restored (KVM_SET_NESTED_STATE): every entry is dirty.
    pub const fn new(layout: L) -> Self {
        Tracked { layout, dirty: [u64::MAX; DIRTY_WORDS], seen: [0; DIRTY_SETS], lazy: false }
    }

    /// The layout, to read (reading marks nothing).
    pub fn inner(&self) -> &L {
        &self.layout
    }

    /// For L0's writes of fields no copy entry reads (VM-instruction error, launch state). Anything
    /// else goes through [`Tracked::write_l0`], or the next entry may miss it.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.layout
    }

    /// The layout, no longer tracked.
    pub fn into_inner(self) -> L {
        self.layout
    }

    /// Whether dirty bit `bit` is set (for the generated routines).
    pub fn is_dirty(&self, bit: usize) -> bool {
        self.dirty.get(bit / 64).is_some_and(|w| w >> (bit % 64) & 1 == 1)
    }

    /// Clear dirty bit `bit` once its entry is copied (for the generated routines).
    pub fn clean(&mut self, bit: usize) {
        if let Some(w) = self.dirty.get_mut(bit / 64) {
            *w &= !(1 << (bit % 64));
        }
    }

    /// How many tracked entries are dirty.
    pub fn dirty_count(&self) -> u32 {
        let all = super::DIRTY_BITS;
        (0..all).filter(|&b| self.is_dirty(b)).count() as u32
    }

    /// The bits of `now` (predicates, control bits) that differ from what dirty set `slot` last
    /// completed with (for the generated routines).
    pub fn changed_since(&self, slot: usize, now: u64) -> u64 {
        self.seen.get(slot).map_or(u64::MAX, |s| s ^ now)
    }

    /// Dirty set `slot` copied every entry `now` asked for. Only then: a set a hook's error
    /// stopped copies them again on the next entry.
    pub fn ran_with(&mut self, slot: usize, now: u64) {
        if let Some(s) = self.seen.get_mut(slot) {
            *s = now;
        }
    }

    /// An exit left the lazy sets pending: vmcs12's copy of their fields may be stale.
    pub fn lazy_pending(&self) -> bool {
        self.lazy
    }

    /// After an exit (the generated exit sync calls it): the lazy sets owe vmcs12 vmcs02's values.
    pub fn defer_lazy(&mut self) {
        self.lazy = true;
    }

    /// The lazy sets ran (the generated lazy routines call it).
    pub fn lazy_done(&mut self) {
        self.lazy = false;
    }

    /// Whether L1's VMREAD of `encoding` must first run the lazy sets (e.g. [`super::sync_rare`]):
    /// the field comes lazily from vmcs02 and L1 has not written it since the exit.
    pub fn needs_lazy_sync(&self, encoding: u64) -> bool {
        self.lazy && lazy_bit(encoding).is_some_and(|b| !self.is_dirty(b))
    }
}

impl<L: VmcsRead + VmcsWrite> Tracked<L> {
    /// L0's write of a value vmcs02 already holds (a plain copy back after an exit): nothing to redo.
    pub fn write_untracked(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.layout.write_raw(encoding, value)
    }

    /// L0's write of a value it computed: if it changes the field, the entries that read it are
    /// copied again on the next entry.
    pub fn write_l0(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        let old = self.layout.read_raw(encoding)?;
        self.layout.write_raw(encoding, value)?;
        if self.layout.read_raw(encoding)? != old {
            self.mark(encoding);
        }
        Ok(())
    }

    fn mark(&mut self, encoding: u64) {
        for (w, d) in self.dirty.iter_mut().zip(dirtied_by(encoding)) {
            *w |= d;
        }
    }
}

impl<L: VmcsRead> VmcsRead for Tracked<L> {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.layout.read_raw(encoding)
    }
}

impl<L: VmcsRead + VmcsWrite> VmcsWrite for Tracked<L> {
    /// L1's VMWRITE: store, and dirty every entry that reads the field.
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.layout.write_raw(encoding, value)?;
        self.mark(encoding);
        Ok(())
    }
}
