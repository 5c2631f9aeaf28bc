//! Raw-encoding lookup (what L0 does on every emulated VMREAD/VMWRITE) against KVM's scheme.
//!
//! Input: a fixed mix of 4096 encodings, ~80% valid (weighted toward the fields an exit handler
//! reads) and ~20% invalid (unmapped architectural fields, high access of non-64-bit fields,
//! reserved bits, bits above 15 or 32). Each benchmark iteration processes the whole mix.
//!
//! Baseline: KVM's vmcs12 lookup (arch/x86/kvm/vmx/vmcs12.h and vmcs12.c): a dense table indexed
//! by ROL16(encoding, 6), holding the member offset (0 = absent), with the high half of each
//! 64-bit field in a slot of its own, clamped with array_index_nospec, then a read whose width
//! comes from the encoding (vmcs12_read_any).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vmcs::field::FieldWidth;
use vmcs::layout::{Access, Location};
use vmcs::{SoftwareVmcs, Vmcs12, fields};

/// Entries in the input mix.
const INPUTS: usize = 4096;

/// A fixed-seed splitmix64: the same mix on every run, without the rand crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Fields an exit handler reads on most exits, with relative weights.
const HOT: &[(u64, u32)] = &[
    (0x4402, 16), // VM_EXIT_REASON
    (0x6400, 12), // EXIT_QUALIFICATION
    (0x681e, 12), // GUEST_RIP
    (0x440c, 10), // VM_EXIT_INSTRUCTION_LEN
    (0x4404, 5),  // VM_EXIT_INTR_INFO
    (0x4406, 2),  // VM_EXIT_INTR_ERROR_CODE
    (0x4408, 3),  // IDT_VECTORING_INFO_FIELD
    (0x440e, 3),  // VMX_INSTRUCTION_INFO
    (0x2400, 3),  // GUEST_PHYSICAL_ADDRESS
    (0x2401, 1),  // GUEST_PHYSICAL_ADDRESS_HIGH
    (0x640a, 2),  // GUEST_LINEAR_ADDRESS
    (0x681c, 3),  // GUEST_RSP
    (0x6820, 3),  // GUEST_RFLAGS
    (0x4824, 3),  // GUEST_INTERRUPTIBILITY_INFO
    (0x4016, 2),  // VM_ENTRY_INTR_INFO_FIELD
    (0x6800, 1),  // GUEST_CR0
    (0x6804, 1),  // GUEST_CR4
];

/// Encodings no layout can map: reserved bits, bits above 15 or 32, high access of a
/// non-64-bit field. (Unmapped architectural fields are added from `fields::ALL`.)
const INVALID: &[u64] = &[
    0x2030,                // unmapped architectural encoding (if the layout does not map it)
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

/// Build the input mix: ~80% valid (half hot fields, half any mapped full or high encoding),
/// ~20% invalid (half the fixed list, half unmapped architectural fields).
fn build_inputs() -> Vec<u64> {
    let mapped = |e: u64| Vmcs12::locate(e).is_some();

    let hot: Vec<(u64, u32)> = HOT.iter().copied().filter(|&(e, _)| mapped(e)).collect();
    assert!(!hot.is_empty(), "no hot field is mapped by this layout");
    let hot_total: u32 = hot.iter().map(|&(_, w)| w).sum();

    // Every valid encoding: full encodings, and the high half of each 64-bit one.
    let mut valid: Vec<u64> = Vec::new();
    for &e in Vmcs12::MAPPED {
        let e = e as u64;
        valid.push(e);
        if (e >> 13) & 3 == 1 {
            valid.push(e | 1);
        }
    }
    assert!(valid.iter().all(|&e| mapped(e)), "a MAPPED encoding (or its high half) does not locate");

    let invalid_fixed: Vec<u64> = INVALID.iter().copied().filter(|&e| !mapped(e)).collect();
    // Architectural fields (and high halves of 64-bit ones) that this layout does not map.
    let mut invalid_arch: Vec<u64> = Vec::new();
    for f in fields::ALL.iter() {
        let e = f.encoding as u64;
        for e in [e, e | 1] {
            if (e & 1 == 0 || f.width == FieldWidth::W64) && !mapped(e) {
                invalid_arch.push(e);
            }
        }
    }
    if invalid_arch.is_empty() {
        invalid_arch = invalid_fixed.clone();
    }

    let mut rng = SplitMix64(0x5eed_1e55_c0de_f00d);
    (0..INPUTS)
        .map(|_| {
            let r = rng.below(100);
            if r < 40 {
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
            } else if r < 80 {
                rng.pick(&valid)
            } else if r < 90 {
                rng.pick(&invalid_fixed)
            } else {
                rng.pick(&invalid_arch)
            }
        })
        .collect()
}

/// KVM's baseline (arch/x86/kvm/vmx/vmcs12.{h,c}).
mod kvm {
    use vmcs::field::FieldWidth;
    use vmcs::{SoftwareVmcs, Vmcs12};

    /// ARRAY_SIZE(vmcs12_field_offsets): ROL16(largest mapped encoding, 6) + 1.
    pub const NR_VMCS12_FIELDS: usize = 3273;
    pub const ENOENT: i32 = 2;

    /// ENC_TO_VMCS12_IDX(enc) = ROL16(enc, 6).
    #[inline(always)]
    pub fn enc_to_vmcs12_idx(field: u64) -> usize {
        (field as u16).rotate_left(6) as usize
    }

    /// array_index_mask_nospec(): !0 if index < size, else 0, without a branch. On x86-64 it is
    /// the kernel's `cmp; sbb` (an asm barrier, so the compiler cannot fold it away after the
    /// bounds check dominating it); elsewhere the generic branchless mask.
    #[inline(always)]
    fn array_index_mask_nospec(index: usize, size: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let mask: usize;
            // SAFETY: register-only arithmetic, no memory access.
            unsafe {
                core::arch::asm!(
                    "cmp {index}, {size}",
                    "sbb {mask}, {mask}",
                    index = in(reg) index,
                    size = in(reg) size,
                    mask = out(reg) mask,
                    options(nomem, nostack),
                );
            }
            mask
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            0usize.wrapping_sub((index < size) as usize)
        }
    }

    #[inline(always)]
    fn array_index_nospec(index: usize, size: usize) -> usize {
        index & array_index_mask_nospec(index, size)
    }

    /// enum vmcs_field_width.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Width {
        U16 = 0,
        U64 = 1,
        U32 = 2,
        Natural = 3,
    }

    impl Width {
        pub fn bytes(self) -> usize {
            match self {
                Width::U16 => 2,
                Width::U32 => 4,
                Width::U64 | Width::Natural => 8,
            }
        }
    }

    /// vmcs_field_width(): the *_HIGH fields are all 32 bit, otherwise bits 14:13.
    #[inline(always)]
    pub fn vmcs_field_width(field: u64) -> Width {
        if field & 1 != 0 {
            return Width::U32;
        }
        match (field >> 13) & 3 {
            0 => Width::U16,
            1 => Width::U64,
            2 => Width::U32,
            _ => Width::Natural,
        }
    }

    /// vmcs12_field_offsets[]: FIELD(number, name) and FIELD64 (which adds number##_HIGH at
    /// offset + 4).
    pub struct Table {
        offsets: [u16; NR_VMCS12_FIELDS],
    }

    impl Table {
        /// Built from the layout's mapped fields. Every slot is checked to be readable with its
        /// encoding's width inside the layout, which makes the unchecked reads below sound.
        pub fn new() -> Box<Table> {
            let mut t = Box::new(Table { offsets: [0; NR_VMCS12_FIELDS] });
            let mut put = |enc: u64, offset: u16| {
                let index = enc_to_vmcs12_idx(enc);
                assert!(index < NR_VMCS12_FIELDS, "{enc:#x}: index {index} does not fit KVM's table");
                assert!(offset != 0, "{enc:#x}: offset 0 means absent in KVM's table");
                assert!(offset as usize + vmcs_field_width(enc).bytes() <= Vmcs12::USED_BYTES);
                assert!(t.offsets[index] == 0, "{enc:#x}: slot {index} is taken");
                t.offsets[index] = offset;
            };
            for &e in Vmcs12::MAPPED {
                let e = e as u64;
                let offset = Vmcs12::locate(e).expect("a MAPPED field locates").offset;
                put(e, offset);
                if vmcs_field_width(e) == Width::U64 {
                    put(e | 1, offset + 4);
                }
            }
            t
        }

        /// get_vmcs12_field_offset(): the member offset, or -ENOENT.
        #[inline(always)]
        pub fn field_offset(&self, field: u64) -> Result<u16, i32> {
            if field >> 15 != 0 {
                return Err(-ENOENT);
            }
            let index = enc_to_vmcs12_idx(field);
            if index >= NR_VMCS12_FIELDS {
                return Err(-ENOENT);
            }
            let index = array_index_nospec(index, NR_VMCS12_FIELDS);
            // SAFETY: index < NR_VMCS12_FIELDS (checked above; the mask keeps it or makes it 0).
            // KVM indexes without a bounds check as well.
            let offset = unsafe { *self.offsets.get_unchecked(index) };
            if offset == 0 {
                return Err(-ENOENT);
            }
            Ok(offset)
        }

        /// The lookup half of a VMREAD: offset and width.
        #[inline(always)]
        pub fn lookup(&self, field: u64) -> Result<(u16, Width), i32> {
            let offset = self.field_offset(field)?;
            Ok((offset, vmcs_field_width(field)))
        }

        /// get_vmcs12_field_offset() + vmcs12_read_any().
        #[inline(always)]
        pub fn read_any(&self, vmcs12: &Vmcs12, field: u64) -> Result<u64, i32> {
            let offset = self.field_offset(field)?;
            let p = vmcs12.as_bytes().as_ptr();
            // SAFETY: `new` checked that offset + width bytes of every slot lie inside the
            // layout's USED_BYTES, which is the length of `as_bytes()`.
            unsafe {
                let p = p.add(offset as usize);
                Ok(match vmcs_field_width(field) {
                    Width::Natural | Width::U64 => (p as *const u64).read_unaligned(),
                    Width::U16 => (p as *const u16).read_unaligned() as u64,
                    Width::U32 => (p as *const u32).read_unaligned() as u64,
                })
            }
        }
    }

    /// The width a `FieldWidth` reads with when not a high access (to cross-check the field table).
    pub fn of(w: FieldWidth) -> Width {
        match w {
            FieldWidth::W16 => Width::U16,
            FieldWidth::W32 => Width::U32,
            FieldWidth::W64 => Width::U64,
            FieldWidth::Natural => Width::Natural,
        }
    }
}

/// A vmcs12 whose every byte is pseudo-random, so that a read of the wrong width or offset shows.
fn patterned_vmcs12() -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    let mut rng = SplitMix64(0x0b5e_55ed_da7a_0001);
    for chunk in v.as_bytes_mut().chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    v
}

/// Ours and KVM's agree on every input: same Some/None, same width, same value. Panics otherwise.
fn check_agreement(inputs: &[u64], kvm: &kvm::Table, vmcs12: &Vmcs12) {
    for f in fields::ALL.iter() {
        assert_eq!(kvm::vmcs_field_width(f.encoding as u64), kvm::of(f.width), "{}: width bits", f.name);
    }
    let mut valid = 0;
    for &e in inputs {
        let ours = Vmcs12::locate(e);
        let theirs = kvm.lookup(e);
        match (ours, theirs) {
            (None, Err(_)) => {}
            (Some(Location { offset, access }), Ok((k_offset, k_width))) => {
                valid += 1;
                assert_eq!(offset, k_offset, "{e:#x}: offset");
                let width_agrees = matches!(
                    (access, k_width),
                    (Access::U16, kvm::Width::U16)
                        | (Access::U32 | Access::High, kvm::Width::U32)
                        | (Access::U64, kvm::Width::U64 | kvm::Width::Natural)
                );
                assert!(width_agrees, "{e:#x}: ours {access:?}, KVM {k_width:?}");
            }
            (o, t) => panic!("{e:#x}: ours {o:?}, KVM {t:?}"),
        }
        let ours = vmcs12.read_any(e).ok();
        let theirs = kvm.read_any(vmcs12, e).ok();
        assert_eq!(ours, theirs, "{e:#x}: value read (ours vs KVM)");
    }
    eprintln!(
        "lookup mix: {} inputs, {valid} valid ({:.1}%), ours and KVM agree on all",
        inputs.len(),
        100.0 * valid as f64 / inputs.len() as f64
    );
}

fn lookup(c: &mut Criterion) {
    let inputs = build_inputs();
    let kvm = kvm::Table::new();
    let vmcs12 = patterned_vmcs12();
    check_agreement(&inputs, &kvm, &vmcs12);

    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(inputs.len() as u64));
    g.bench_function("ours", |b| {
        b.iter(|| {
            for &e in &inputs {
                black_box(Vmcs12::locate(black_box(e)));
            }
        })
    });
    g.bench_function("kvm", |b| {
        b.iter(|| {
            for &e in &inputs {
                let _ = black_box(kvm.lookup(black_box(e)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("read_any");
    g.throughput(Throughput::Elements(inputs.len() as u64));
    g.bench_function("ours", |b| {
        b.iter(|| {
            for &e in &inputs {
                let _ = black_box(black_box(&vmcs12).read_any(black_box(e)));
            }
        })
    });
    g.bench_function("kvm", |b| {
        b.iter(|| {
            for &e in &inputs {
                let _ = black_box(kvm.read_any(black_box(&vmcs12), black_box(e)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
