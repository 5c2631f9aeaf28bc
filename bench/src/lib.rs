//! The raw-encoding lookup of `vmcs` (what L0 runs on every emulated VMREAD/VMWRITE of L1)
//! against KVM's own scheme, written in C from its facts (`c/kvm_vmcs12.c`, compiled by the `cc`
//! crate at -O2 with the kernel's code-generation flags).
//!
//! Both sides run the same loops: one out-of-line function per operation holding the loop, each
//! encoding and each result through the same register-only black box. [`check_agreement`] proves
//! both answer alike on every 16-bit encoding (and with bits 15, 16, 31, 32 and 63 set) before
//! anything is timed; `benches/lookup.rs` times them interleaved.

use vmcs::layouts::MemberAccess;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite, fields};

mod ffi {
    unsafe extern "C" {
        pub fn kvm_lookup(field: u64, offset: *mut u16, width: *mut i32) -> i32;
        pub fn kvm_read_any(vmcs12: *const u8, field: u64, value: *mut u64) -> i32;
        pub fn kvm_write_any(vmcs12: *mut u8, field: u64, value: u64) -> i32;
        pub fn kvm_table_len() -> u32;
        pub fn kvm_lookup_loop(inputs: *const u64, n: usize);
        pub fn kvm_read_loop(vmcs12: *const u8, inputs: *const u64, n: usize);
        pub fn kvm_write_loop(vmcs12: *mut u8, inputs: *const u64, n: usize);
    }
}

/// The C baseline: KVM's functions, one call per encoding (for the agreement check), and its
/// timing loops.
pub mod kvm {
    use super::ffi;
    use vmcs::{Layout, Vmcs12};

    /// KVM's `enum vmcs_field_width`.
    pub const U16: i32 = 0;
    pub const U64: i32 = 1;
    pub const U32: i32 = 2;
    pub const NATURAL: i32 = 3;

    /// get_vmcs12_field_offset + vmcs_field_width: (offset, width), or None for -ENOENT.
    pub fn lookup(field: u64) -> Option<(u16, i32)> {
        let (mut offset, mut width) = (0u16, 0i32);
        // SAFETY: the two out-pointers are valid locals.
        let r = unsafe { ffi::kvm_lookup(field, &mut offset, &mut width) };
        (r == 0).then_some((offset, width))
    }

    pub fn read_any(v: &Vmcs12, field: u64) -> Option<u64> {
        let mut value = 0;
        // SAFETY: the C side reads only offsets its table holds, all inside vmcs12 (the table is
        // written from the same layout; `table_fits` checks it).
        let r = unsafe { ffi::kvm_read_any(v.as_bytes().as_ptr(), field, &mut value) };
        (r == 0).then_some(value)
    }

    pub fn write_any(v: &mut Vmcs12, field: u64, value: u64) -> Option<()> {
        // SAFETY: as for read_any; the C side writes only inside the field it locates.
        let r = unsafe { ffi::kvm_write_any(v.as_bytes_mut().as_mut_ptr(), field, value) };
        (r == 0).then_some(())
    }

    /// ARRAY_SIZE(vmcs12_field_offsets): ROL16 of the largest mapped encoding, plus 1.
    pub fn table_len() -> u32 {
        // SAFETY: no arguments, reads a constant.
        unsafe { ffi::kvm_table_len() }
    }

    pub fn lookup_loop(inputs: &[u64]) {
        // SAFETY: `inputs` is a valid slice of `len` u64s.
        unsafe { ffi::kvm_lookup_loop(inputs.as_ptr(), inputs.len()) }
    }

    pub fn read_loop(v: &Vmcs12, inputs: &[u64]) {
        // SAFETY: as for read_any, over a valid slice.
        unsafe { ffi::kvm_read_loop(v.as_bytes().as_ptr(), inputs.as_ptr(), inputs.len()) }
    }

    pub fn write_loop(v: &mut Vmcs12, inputs: &[u64]) {
        // SAFETY: as for write_any, over a valid slice.
        unsafe { ffi::kvm_write_loop(v.as_bytes_mut().as_mut_ptr(), inputs.as_ptr(), inputs.len()) }
    }
}

/// The register-only barrier the C loops use too (`asm volatile("" : "+r"(x))`): the value must
/// exist in a register, nothing more (std's black_box also spills it to memory).
#[inline(always)]
fn black_box(mut x: u64) -> u64 {
    // SAFETY: an empty asm that claims to modify a register: no memory access, no other effect.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack, preserves_flags)) };
    x
}

/// Ours, the same loops.
pub mod ours {
    use super::black_box;
    use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite};

    #[inline(never)]
    pub fn lookup_loop(inputs: &[u64]) {
        for &e in inputs {
            let out = match Vmcs12::locate(black_box(e)) {
                // As the C loop does with KVM's answer: the offset and the width code.
                Some(l) => l.offset as u64 | (l.access as u64) << 16,
                None => u64::MAX,
            };
            black_box(out);
        }
    }

    #[inline(never)]
    pub fn read_loop(v: &Vmcs12, inputs: &[u64]) {
        for &e in inputs {
            black_box(v.read_raw(black_box(e)).unwrap_or(u64::MAX));
        }
    }

    #[inline(never)]
    pub fn write_loop(v: &mut Vmcs12, inputs: &[u64]) {
        for &e in inputs {
            let e = black_box(e);
            black_box(v.write_raw(e, e ^ 0x5a5a_5a5a_5a5a_5a5a).is_err() as u64);
        }
    }
}

/// One operation each, out of line: what the agreement check calls, and what to read the
/// generated code of (`objdump -d --disassemble=vmcs_bench_read_any`).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn vmcs_bench_locate(encoding: u64) -> Option<vmcs::layouts::Location> {
    Vmcs12::locate(encoding)
}

#[unsafe(no_mangle)]
#[inline(never)]
pub fn vmcs_bench_read_any(v: &Vmcs12, encoding: u64) -> Result<u64, vmcs::VmcsError> {
    v.read_raw(encoding)
}

#[unsafe(no_mangle)]
#[inline(never)]
pub fn vmcs_bench_write_any(v: &mut Vmcs12, encoding: u64, value: u64) -> Result<(), vmcs::VmcsError> {
    v.write_raw(encoding, value)
}

/// A fixed-seed splitmix64: the same mix on every run, without the rand crate.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Entries in the input mix.
pub const INPUTS: usize = 4096;

/// Fields an exit handler reads on most exits, with relative weights.
const HOT: &[(fields::Field<fields::W32, fields::ReadOnly>, u32)] = &[
    (fields::VM_EXIT_REASON, 16),
    (fields::VM_EXIT_INSTRUCTION_LEN, 10),
    (fields::VM_EXIT_INTR_INFO, 5),
    (fields::VM_EXIT_INTR_ERROR_CODE, 2),
    (fields::IDT_VECTORING_INFO_FIELD, 3),
    (fields::VMX_INSTRUCTION_INFO, 3),
];

/// More hot fields of other types, by encoding: qualification, RIP, RSP, RFLAGS, guest-physical
/// and linear address, interruptibility, entry interruption information, CR0, CR4.
fn hot() -> Vec<(u64, u32)> {
    let mut h: Vec<(u64, u32)> = HOT.iter().map(|&(f, w)| (f.raw(), w)).collect();
    h.extend([
        (fields::EXIT_QUALIFICATION.raw(), 12),
        (fields::GUEST_RIP.raw(), 12),
        (fields::GUEST_RSP.raw(), 3),
        (fields::GUEST_RFLAGS.raw(), 3),
        (fields::GUEST_PHYSICAL_ADDRESS.raw(), 3),
        (fields::GUEST_PHYSICAL_ADDRESS.high().raw(), 1),
        (fields::GUEST_LINEAR_ADDRESS.raw(), 2),
        (fields::GUEST_INTERRUPTIBILITY_INFO.raw(), 3),
        (fields::VM_ENTRY_INTR_INFO_FIELD.raw(), 2),
        (fields::GUEST_CR0.raw(), 1),
        (fields::GUEST_CR4.raw(), 1),
    ]);
    h
}

/// Encodings no layout maps: reserved bits, bits above 15 or 32, high access of a non-64-bit field.
const INVALID: &[u64] = &[
    0x4403,                // high access of a 32-bit field (VM_EXIT_REASON)
    0x6401,                // high access of a natural-width field (EXIT_QUALIFICATION)
    0x0001,                // high access of a 16-bit field
    0x1000,                // reserved bit 12
    0x1000 | 0x4402,       // reserved bit 12 on a mapped field
    0x7ffe,                // every index bit, reserved bit 12
    0x8000 | 0x681e,       // bit 15 on a mapped field
    0x1_0000_2000,         // a mapped field with bit 32 set
    0xffff_ffff_0000_4402, // a mapped field with bits 63:32 set
    u64::MAX,
];

/// The input mix: ~80% valid (half hot fields, half any mapped full or high encoding), ~20%
/// invalid (half the fixed list, half architectural fields vmcs12 does not map).
pub fn inputs() -> Vec<u64> {
    let mapped = |e: u64| Vmcs12::locate(e).is_some();
    let hot: Vec<(u64, u32)> = hot().into_iter().filter(|&(e, _)| mapped(e)).collect();
    let hot_total: u32 = hot.iter().map(|&(_, w)| w).sum();
    let mut valid: Vec<u64> = Vec::new();
    for &e in Vmcs12::MAPPED {
        valid.push(e as u64);
        if (e >> 13) & 3 == 1 {
            valid.push(e as u64 | 1);
        }
    }
    let invalid_fixed: Vec<u64> = INVALID.iter().copied().filter(|&e| !mapped(e)).collect();
    let mut invalid_arch: Vec<u64> = Vec::new();
    for f in fields::ALL.iter() {
        let e = f.encoding as u64;
        for e in [e, e | 1] {
            if (e & 1 == 0 || f.width == fields::FieldWidth::W64) && !mapped(e) {
                invalid_arch.push(e);
            }
        }
    }
    let mut rng = SplitMix64(0x5eed_1e55_c0de_f00d);
    (0..INPUTS)
        .map(|_| match rng.below(100) {
            0..40 => {
                let mut w = rng.below(hot_total as usize) as u32;
                let mut pick = hot[0].0;
                for &(e, weight) in &hot {
                    if w < weight {
                        pick = e;
                        break;
                    }
                    w -= weight;
                }
                pick
            }
            40..80 => rng.pick(&valid),
            80..90 => rng.pick(&invalid_fixed),
            _ => rng.pick(&invalid_arch),
        })
        .collect()
}

/// A vmcs12 whose every byte is pseudo-random, so that a read of the wrong width or offset shows.
pub fn patterned_vmcs12() -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    let mut rng = SplitMix64(0x0b5e_55ed_da7a_0001);
    for chunk in v.as_bytes_mut().chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    v
}

/// Every input the agreement check covers: each 16-bit encoding, alone and with each of bits 15,
/// 16, 31, 32 and 63 set, then the timed mix.
pub fn agreement_inputs(mix: &[u64]) -> Vec<u64> {
    let mut all = Vec::with_capacity(6 << 16);
    for high in [0, 1 << 15, 1 << 16, 1 << 31, 1 << 32, 1 << 63] {
        all.extend((0..=u16::MAX as u64).map(|e| e | high));
    }
    all.extend_from_slice(mix);
    all
}

/// Ours and KVM's agree on `inputs`: the same Some/None, offset and width, the same value read,
/// the same bytes after a write. Returns how many of them name a field.
pub fn check_agreement(inputs: &[u64]) -> Result<usize, String> {
    let base = patterned_vmcs12();
    let mut valid = 0;
    for &e in inputs {
        let ours = vmcs_bench_locate(e).map(|l| {
            let width = match l.access {
                MemberAccess::U16 => kvm::U16,
                MemberAccess::U32 | MemberAccess::High => kvm::U32,
                MemberAccess::U64 => kvm::U64,
            };
            (l.offset, width)
        });
        // KVM keeps natural width apart; vmcs12 stores it as 64 bits, as we do.
        let theirs = kvm::lookup(e).map(|(o, w)| (o, if w == kvm::NATURAL { kvm::U64 } else { w }));
        if ours != theirs {
            return Err(format!("{e:#x}: lookup: ours {ours:?}, KVM {theirs:?}"));
        }
        valid += ours.is_some() as usize;
        let (r_ours, r_theirs) = (vmcs_bench_read_any(&base, e).ok(), kvm::read_any(&base, e));
        if r_ours != r_theirs {
            return Err(format!("{e:#x}: read_any: ours {r_ours:x?}, KVM {r_theirs:x?}"));
        }
        let value = e.rotate_left(17) ^ 0x0123_4567_89ab_cdef;
        let (mut a, mut b) = (base, base);
        let (w_ours, w_theirs) = (vmcs_bench_write_any(&mut a, e, value).ok(), kvm::write_any(&mut b, e, value));
        if w_ours != w_theirs || a != b {
            return Err(format!(
                "{e:#x}: write_any of {value:#x}: ours {w_ours:?}, KVM {w_theirs:?}, bytes differ: {}",
                a != b
            ));
        }
    }
    Ok(valid)
}
