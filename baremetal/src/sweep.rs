//! Every schema field on a VMCS that is never launched: VMREAD/VMWRITE succeed exactly for the
//! fields `fields::exists` makes exist, with the width round trip, over all 2^15 encodings, for
//! read-only fields (IA32_VMX_MISC bit 29) and an unsupported encoding.

use vmcs::caps::{Cap, VmxCaps};
use vmcs::fields;
use vmcs::fields::{FieldKind, FieldWidth};
use vmcs::hw::{CurrentVmcs, VmInstructionError, VmxError};
use vmcs::{VmcsError, VmcsRead, VmcsWrite};

use crate::rt::check;

fn width_mask(w: FieldWidth) -> u64 {
    match w {
        FieldWidth::W16 => 0xffff,
        FieldWidth::W32 => 0xffff_ffff,
        FieldWidth::W64 | FieldWidth::Natural => u64::MAX,
    }
}

fn pattern(enc: u32) -> u64 {
    0x8877_6655_4433_2211 ^ (enc as u64).wrapping_mul(0x0001_0003_0005_0007)
}

const UNSUPPORTED: VmxError = VmxError::FailValid(VmInstructionError::UnsupportedComponent);

/// One line per schema field: VMREAD/VMWRITE success = `exists`, and the width round trip.
/// Returns the highest field index (encoding bits 9:1) the CPU accepted.
pub(crate) fn field_sweep(v: &mut CurrentVmcs<'_>, caps: &VmxCaps) -> u32 {
    let mut max_index = 0;
    for f in fields::ALL.iter() {
        let full = f.encoding as u64;
        let is64 = f.width == FieldWidth::W64;
        let mut problems: [Option<&str>; 4] = [None; 4];
        let mut np = 0;
        let mut note = |s: &'static str| {
            if np < problems.len() {
                problems[np] = Some(s);
                np += 1;
            }
        };
        let exists = fields::exists(full, caps);
        let r = v.vmread(full);
        if r.is_ok() != exists {
            note(if exists { "vmread failed on an existing field" } else { "vmread succeeded on an absent field" });
        }
        if let Err(e) = r
            && e != UNSUPPORTED
        {
            note("vmread failed with other than error 12");
        }
        if r.is_ok() {
            max_index = max_index.max(f.encoding >> 1 & 0x1ff);
        }
        if is64 {
            let hexists = fields::exists(full | 1, caps);
            let hr = v.vmread(full | 1);
            if hr.is_ok() != hexists {
                note("high vmread disagrees with exists");
            }
        }
        if f.kind != FieldKind::ReadOnly {
            let p = pattern(f.encoding);
            let w = v.vmwrite(full, p);
            if w.is_ok() != exists {
                note(if exists {
                    "vmwrite failed on an existing field"
                } else {
                    "vmwrite succeeded on an absent field"
                });
            }
            if let Err(e) = w
                && e != UNSUPPORTED
            {
                note("vmwrite failed with other than error 12");
            }
            if w.is_ok() {
                let want = p & width_mask(f.width);
                if v.vmread(full) != Ok(want) {
                    note("round trip differs from the width-truncated value");
                }
                if is64 {
                    if v.vmread(full | 1) != Ok(p >> 32) {
                        note("high read is not bits 63:32");
                    }
                    let p2 = pattern(!f.encoding);
                    if v.vmwrite(full | 1, p2).is_err() {
                        note("high vmwrite failed");
                    } else {
                        if v.vmread(full | 1) != Ok(p2 & 0xffff_ffff) {
                            note("high round trip differs");
                        }
                        if v.vmread(full) != Ok((p2 << 32) | (p & 0xffff_ffff)) {
                            note("high write did not set bits 63:32 only");
                        }
                    }
                }
            }
        }
        let desc = format_args!(
            "field {} {:#06x}{} exists={}",
            f.name,
            f.encoding,
            if is64 { "+high" } else { "" },
            if exists { "yes" } else { "no" }
        );
        check(np == 0, desc);
        for p in problems.iter().flatten() {
            println!("     - {p}");
        }
    }
    max_index
}

pub(crate) struct Probe {
    pub(crate) max_index: u32,
}

/// VMREAD of every encoding with bits 63:15 and bit 12 clear: the set the CPU accepts must be the
/// set `fields::exists` computes. Encodings the schema does not know are reported as data.
pub(crate) fn encoding_probe(v: &CurrentVmcs<'_>, caps: &VmxCaps) -> Probe {
    let (mut accepted, mut extra, mut missing, mut max_index) = (0u32, 0u32, 0u32, 0u32);
    for enc in 0u32..0x8000 {
        if enc & 0x1000 != 0 {
            continue;
        }
        let ok = v.vmread(enc as u64).is_ok();
        let exists = fields::exists(enc as u64, caps);
        if ok {
            accepted += 1;
            max_index = max_index.max(enc >> 1 & 0x1ff);
        }
        if ok && !exists {
            extra += 1;
            println!("data: VMREAD accepts {enc:#06x}, which the schema does not make exist for these MSRs");
        } else if !ok && exists {
            missing += 1;
            println!("data: VMREAD rejects {enc:#06x}, which exists by the schema");
        }
    }
    check(
        extra == 0 && missing == 0,
        format_args!("all 2^15 encodings: {accepted} accepted, {extra} beyond the schema, {missing} missing"),
    );
    Probe { max_index }
}

/// VMWRITE to read-only fields: error 13 exactly when IA32_VMX_MISC bit 29 is clear.
pub(crate) fn read_only_fields(v: &mut CurrentVmcs<'_>, caps: &VmxCaps) {
    let misc29 = caps.has_cap(Cap::MiscVmwriteAnyField);
    println!("data: IA32_VMX_MISC bit 29 (VMWRITE to exit-information fields) = {}", misc29 as u8);
    for f in fields::ALL.iter().filter(|f| f.kind == FieldKind::ReadOnly) {
        let enc = f.encoding as u64;
        if !fields::exists(enc, caps) {
            continue;
        }
        let p = pattern(f.encoding);
        let r = v.vmwrite(enc, p);
        let ok = if misc29 {
            r.is_ok() && v.vmread(enc) == Ok(p & width_mask(f.width))
        } else {
            r == Err(VmxError::FailValid(VmInstructionError::VmwriteReadOnlyComponent))
        };
        check(ok, format_args!("read-only {} {:#06x}: vmwrite {:?} (misc bit 29 = {})", f.name, enc, r, misc29 as u8));
    }
    // Through the access trait: the error maps to ReadOnlyField when bit 29 is clear.
    let r = v.write_raw(fields::VM_EXIT_REASON.raw(), 0x12);
    let want = if misc29 { Ok(()) } else { Err(VmcsError::ReadOnlyField(0x4402)) };
    check(r == want, format_args!("VmcsWrite::write_raw(VM_EXIT_REASON): {r:?}"));
}

pub(crate) fn unsupported_encoding(v: &mut CurrentVmcs<'_>) {
    let r = v.vmread(0x7ffe);
    check(r == Err(UNSUPPORTED), format_args!("vmread 0x7ffe: {r:?} (error 12)"));
    let w = v.vmwrite(0x7ffe, 1);
    check(w == Err(UNSUPPORTED), format_args!("vmwrite 0x7ffe: {w:?} (error 12)"));
    let t = v.read_raw(0x7ffe);
    check(t == Err(VmcsError::UnsupportedField(0x7ffe)), format_args!("VmcsRead::read_raw(0x7ffe): {t:?}"));
    let e = v.vmread(0x4400);
    check(e == Ok(12), format_args!("VM-instruction error field after the failure: {e:?}"));
}
