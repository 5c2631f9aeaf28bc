//! Counting VMREADs and VMWRITEs on any backend: what each nested transition costs on hardware.

use core::cell::Cell;

use vmcs::{VmcsError, VmcsRead, VmcsWrite};

/// VMREADs and VMWRITEs made through a [`Counted`] handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// VMREADs.
    pub reads: u32,
    /// VMWRITEs.
    pub writes: u32,
}

impl core::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts { reads: self.reads + o.reads, writes: self.writes + o.writes }
    }
}

/// A VMCS backend that counts every access it forwards.
pub struct Counted<'a, V: ?Sized> {
    inner: &'a mut V,
    reads: Cell<u32>,
    writes: u32,
}

impl<'a, V: ?Sized> Counted<'a, V> {
    /// Count the accesses to `inner`, from zero.
    pub fn new(inner: &'a mut V) -> Self {
        Counted { inner, reads: Cell::new(0), writes: 0 }
    }
    /// The backend itself, for what is not an access (e.g. the VM entry).
    pub fn inner_mut(&mut self) -> &mut V {
        self.inner
    }
    /// The backend itself, for what is not an access (e.g. INVEPT).
    pub fn inner(&self) -> &V {
        self.inner
    }
    /// The accesses so far.
    pub fn counts(&self) -> Counts {
        Counts { reads: self.reads.get(), writes: self.writes }
    }
}

impl<V: VmcsRead + ?Sized> VmcsRead for Counted<'_, V> {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_raw(encoding)
    }
}

impl<V: VmcsWrite + ?Sized> VmcsWrite for Counted<'_, V> {
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.writes += 1;
        self.inner.write_raw(encoding, value)
    }
}
