//! A valid VM-entry state (a 64-bit guest on a 64-bit host, the shape the Bochs suite enters),
//! the Bochs models' capability MSRs, and a small physical memory, for the entry-check tests.

use std::collections::{BTreeMap, HashMap};

use vmcs::caps::VmxCaps;
use vmcs::controls::{Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin};
use vmcs::controls::{VmEntryControls as Entry, VmExitControls as Exit};
use vmcs::entry::{Facts, GuestMemory};
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{VmcsRead, VmcsWrite};

/// The IA32_VMX_* MSRs of each Bochs 2.7 model, as `VmxCaps`.
pub fn bochs_models() -> Vec<(String, VmxCaps)> {
    super::bochs_caps()
        .into_iter()
        .map(|(model, msrs)| {
            let mut caps = VmxCaps::new();
            for (index, value) in msrs {
                caps.set(index, value);
            }
            (model, caps)
        })
        .collect()
}

/// Facts of a Bochs-like 64-bit VMM: MAXPHYADDR 40, 4-level paging, in IA-32e mode, outside SMM,
/// executing VMLAUNCH on a clear VMCS at 0x5000.
pub fn facts() -> Facts {
    Facts {
        maxphyaddr: 40,
        linear_width: 48,
        efer_lma: true,
        in_smm: false,
        current_vmcs: 0x5000,
        // SCE, LME, LMA and NXE exist.
        efer_reserved: !(1 | 1 << 8 | 1 << 10 | 1 << 11),
        debugctl_reserved: !0x3,
        perf_global_ctrl_reserved: !0xf,
        rtit_ctl_reserved: u64::MAX,
        rtm: false,
        sgx: false,
        sti_blocks_nmi_injection: true,
        vmlaunch: true,
        launched: false,
        current_is_shadow: false,
        mov_ss_blocked: false,
    }
}

pub const CR0: u64 = 0x8000_0031; // PG, NE, ET, PE
pub const CR4: u64 = 0x2620; // VMXE, OSXMMEXCPT, OSFXSR, PAE
pub const PAGE: u64 = 0x10_0000; // every address field points at a page from here up

/// The control words the suite uses: HLT exiting, IA-32e guest, 64-bit host, adjusted to the
/// allowed settings (the TRUE MSRs where they exist).
pub fn controls(caps: &VmxCaps) -> (u64, u64, u64, u64) {
    (
        Pin::adjust(caps, Pin::empty(), Pin::empty()).unwrap().to_bits(),
        Proc::adjust(caps, Proc::HLT_EXITING, Proc::empty()).unwrap().to_bits(),
        Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE, Exit::empty()).unwrap().to_bits(),
        Entry::adjust(caps, Entry::IA32E_MODE_GUEST, Entry::empty()).unwrap().to_bits(),
    )
}

/// Every (field, value) of the valid state; fields the capabilities lack are left out.
pub fn baseline(caps: &VmxCaps) -> Vec<(u64, u64)> {
    let (pin, proc, exit, entry) = controls(caps);
    let mut v = vec![
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc),
        (F::VM_EXIT_CONTROLS.raw(), exit),
        (F::VM_ENTRY_CONTROLS.raw(), entry),
        (F::VMCS_LINK_POINTER.raw(), u64::MAX),
        (F::HOST_CR0.raw(), CR0),
        (F::HOST_CR3.raw(), 0x1000),
        (F::HOST_CR4.raw(), CR4),
        (F::HOST_CS_SELECTOR.raw(), 0x08),
        (F::HOST_TR_SELECTOR.raw(), 0x18),
        (F::HOST_TR_BASE.raw(), 0x3000),
        (F::HOST_GDTR_BASE.raw(), 0x2000),
        (F::HOST_IDTR_BASE.raw(), 0x2800),
        (F::HOST_RIP.raw(), 0x40_0000),
        (F::HOST_RSP.raw(), 0x50_0000),
        (F::GUEST_CR0.raw(), CR0),
        (F::GUEST_CR3.raw(), 0x1000),
        (F::GUEST_CR4.raw(), CR4),
        (F::GUEST_DR7.raw(), 0x400),
        (F::GUEST_RIP.raw(), 0x40_1000),
        (F::GUEST_RSP.raw(), 0x60_0000),
        (F::GUEST_RFLAGS.raw(), 0x2),
        (F::GUEST_CS_SELECTOR.raw(), 0x08),
        (F::GUEST_CS_LIMIT.raw(), 0xffff_ffff),
        (F::GUEST_CS_AR_BYTES.raw(), 0xa09b),
        (F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000),
        (F::GUEST_TR_SELECTOR.raw(), 0x18),
        (F::GUEST_TR_BASE.raw(), 0x3000),
        (F::GUEST_TR_LIMIT.raw(), 0x67),
        (F::GUEST_TR_AR_BYTES.raw(), 0x8b),
        (F::GUEST_GDTR_BASE.raw(), 0x2000),
        (F::GUEST_GDTR_LIMIT.raw(), 0x27),
        (F::GUEST_IDTR_BASE.raw(), 0x2800),
        (F::GUEST_IDTR_LIMIT.raw(), 0x1ff),
    ];
    for sel in [F::HOST_ES_SELECTOR, F::HOST_SS_SELECTOR, F::HOST_DS_SELECTOR, F::HOST_FS_SELECTOR, F::HOST_GS_SELECTOR]
    {
        v.push((sel.raw(), 0x10));
    }
    let data = [
        (F::GUEST_ES_SELECTOR, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES),
        (F::GUEST_SS_SELECTOR, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES),
        (F::GUEST_DS_SELECTOR, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES),
        (F::GUEST_FS_SELECTOR, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES),
        (F::GUEST_GS_SELECTOR, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES),
    ];
    for (sel, limit, ar) in data {
        v.extend([(sel.raw(), 0x10), (limit.raw(), 0xffff_ffff), (ar.raw(), 0xc093)]);
    }
    // Address fields point at distinct aligned pages, so that turning a control on is valid.
    let pages = [
        F::IO_BITMAP_A.raw(),
        F::IO_BITMAP_B.raw(),
        F::MSR_BITMAP.raw(),
        F::VIRTUAL_APIC_PAGE_ADDR.raw(),
        F::APIC_ACCESS_ADDR.raw(),
        F::POSTED_INTR_DESC_ADDR.raw(),
        F::PML_ADDRESS.raw(),
        F::EPTP_LIST_ADDRESS.raw(),
        F::VMREAD_BITMAP.raw(),
        F::VMWRITE_BITMAP.raw(),
        F::VE_INFORMATION_ADDRESS.raw(),
        F::SPPT_POINTER.raw(),
        F::VM_EXIT_MSR_STORE_ADDR.raw(),
        F::VM_EXIT_MSR_LOAD_ADDR.raw(),
        F::VM_ENTRY_MSR_LOAD_ADDR.raw(),
    ];
    for (i, enc) in pages.into_iter().enumerate() {
        v.push((enc, PAGE + 0x1000 * i as u64));
    }
    // WB, 4-level EPT at the next page.
    v.push((F::EPT_POINTER.raw(), (PAGE + 0x1_0000) | 6 | 3 << 3));
    v.extend([(F::VIRTUAL_PROCESSOR_ID.raw(), 1), (F::TSC_MULTIPLIER.raw(), 1 << 48), (F::POSTED_INTR_NV.raw(), 0xf2)]);
    v.extend([(F::HOST_IA32_PAT.raw(), 0x0007_0406_0007_0406), (F::GUEST_IA32_PAT.raw(), 0x0007_0406_0007_0406)]);
    v.extend([(F::HOST_IA32_EFER.raw(), 0x500), (F::GUEST_IA32_EFER.raw(), 0x500)]);
    let vmcs = SoftVmcs::new(caps);
    v.retain(|(enc, _)| vmcs.exists(*enc));
    v
}

/// A software VMCS holding the baseline.
pub fn vmcs(caps: &VmxCaps) -> SoftVmcs {
    let mut v = SoftVmcs::new(caps);
    for (enc, value) in baseline(caps) {
        v.write_raw(enc, value).unwrap();
    }
    v
}

/// 4 GiB of physical memory as 8-byte words; unset words read as 0, above 4 GiB nothing reads.
#[derive(Clone, Debug, Default)]
pub struct Memory(pub HashMap<u64, u64>);

impl Memory {
    /// Writes outside the 4 GiB are dropped (nothing is there to write).
    pub fn write(&mut self, address: u64, bytes: u32, value: u64) {
        if address >> 32 != 0 {
            return;
        }
        for i in 0..bytes as u64 {
            let (word, shift) = ((address + i) & !7, ((address + i) & 7) * 8);
            let w = self.0.entry(word).or_insert(0);
            *w = (*w & !(0xff << shift)) | ((value >> (8 * i) & 0xff) << shift);
        }
    }
}

/// The WRMSR these tests say faults (what `Value::FaultingWrmsr` resolves to): a non-canonical
/// IA32_KERNEL_GS_BASE.
pub const FAULTING_WRMSR: (u32, u64) = (0xc000_0102, 0x8000_0000_0000_0000);

impl GuestMemory for Memory {
    /// IA32_KERNEL_GS_BASE takes only canonical (48-bit) addresses; MSRs 4000_0000H-BFFF_FFFFH do
    /// not exist; every other write succeeds.
    fn wrmsr_faults(&self, index: u32, value: u64) -> bool {
        let canonical = ((value << 16) as i64 >> 16) as u64 == value;
        (index == 0xc000_0102 && !canonical) || (0x4000_0000..0xc000_0000).contains(&index)
    }

    fn read(&self, address: u64, bytes: u32) -> Option<u64> {
        if address >> 32 != 0 {
            return None;
        }
        let mut v = 0;
        for i in 0..bytes as u64 {
            let (word, shift) = ((address + i) & !7, ((address + i) & 7) * 8);
            v |= (self.0.get(&word).copied().unwrap_or(0) >> shift & 0xff) << (8 * i);
        }
        Some(v)
    }
}

/// A VMREAD that must succeed (the field exists for these capabilities).
pub fn get(v: &SoftVmcs, enc: u64) -> u64 {
    v.read_raw(enc).unwrap()
}

/// Apply a boundary mutation of vmcs-gen to a software VMCS and memory, resolving its symbolic
/// values with `caps` and `facts` (as the Bochs kernel does on the real VMCS). False when an edit
/// targets a field the capabilities lack.
pub fn apply(
    schema: &vmcs_gen::Schema,
    m: &[vmcs_gen::checks::mutate::Edit],
    v: &mut SoftVmcs,
    mem: &mut Memory,
    caps: &VmxCaps,
    facts: &[u64],
) -> bool {
    use vmcs_gen::checks::mutate::{Op, Source, Target, Value};
    let enc = |f: usize| schema.fields[f].encoding.raw() as u64;
    let icaps = vmcs_gen::Caps::Msrs((0x480..0x4a0).map(|i| (i, caps.raw(i))).collect());
    for e in m {
        let source = |s: Source, v: &SoftVmcs| match s {
            Source::Msr(msr) => schema.msr_value(&icaps, msr),
            Source::Fact(f) => facts[f],
            Source::Field(f) => v.read_raw(enc(f)).unwrap_or(0),
        };
        let value = match e.value {
            Value::Const(c) => c,
            Value::FactBit { fact, delta } => {
                let n = facts[fact] as i64 + delta as i64;
                if (0..64).contains(&n) { 1 << n } else { 0 }
            }
            Value::LowestSet { source: s, mask } => {
                let x = source(s, v) & mask;
                x & x.wrapping_neg()
            }
            Value::HighestSet { source: s, mask } => {
                let x = source(s, v) & mask;
                if x == 0 { 0 } else { 1 << (63 - x.leading_zeros()) }
            }
            Value::LowestClear { source: s, mask } => {
                let x = !source(s, v) & mask;
                x & x.wrapping_neg()
            }
            Value::Plus { source: s, lo, width, delta, at } => {
                let w = if width >= 64 { u64::MAX } else { (1 << width) - 1 };
                ((source(s, v) >> lo).wrapping_add(delta as u64) & w) << at
            }
            Value::Page(n) => PAGE + 0x1000 * n as u64,
            Value::FaultingWrmsr { data: false } => FAULTING_WRMSR.0 as u64,
            Value::FaultingWrmsr { data: true } => FAULTING_WRMSR.1,
            Value::FactBits { fact, mask } => facts[fact] & mask,
            Value::Bits { source: s, mask } => source(s, v) & mask,
            Value::Clear { source: s, mask } => !source(s, v) & mask,
            Value::Allowed { msr, field } => {
                let (m, ctl) = (schema.msr_value(&icaps, msr), v.read_raw(enc(field)).unwrap_or(0));
                match schema.msrs[msr].kind {
                    vmcs_gen::model::MsrKind::Control => (ctl | (m & 0xffff_ffff)) & (m >> 32),
                    vmcs_gen::model::MsrKind::Flags => ctl & m,
                }
            }
        };
        let update = |old: u64| match e.op {
            Op::Assign { mask } => (old & !mask) | (value & mask),
            Op::Or => old | value,
            Op::AndNot => old & !value,
            Op::Xor => old ^ value,
        };
        match e.target {
            Target::Field(f) => {
                let Ok(old) = v.read_raw(enc(f)) else { return false };
                v.write_raw(enc(f), update(old)).unwrap();
            }
            Target::Memory { base, base_mask, offset, bytes } => {
                let Ok(b) = v.read_raw(enc(base)) else { return false };
                let address = (b & base_mask).wrapping_add(offset);
                let old = GuestMemory::read(mem, address, bytes).unwrap_or(u64::MAX);
                mem.write(address, bytes, update(old));
            }
        }
    }
    true
}

/// Apply a mutation aimed at its rule, then, while another rule of `selection` fails first, apply
/// a way to make that rule hold that keeps every bit set so far (at most 32 times). The Bochs
/// kernel does the same (over every rule) before each VMLAUNCH.
#[allow(clippy::too_many_arguments)]
pub fn apply_repaired(
    schema: &vmcs_gen::Schema,
    m: &vmcs_gen::checks::mutate::Mutation,
    fixes: &[Vec<Vec<vmcs_gen::checks::mutate::Edit>>],
    v: &mut SoftVmcs,
    mem: &mut Memory,
    caps: &VmxCaps,
    f: &Facts,
    fv: &[u64],
    selection: vmcs::entry::Selection,
) -> bool {
    if !apply(schema, &m.edits, v, mem, caps, fv) {
        return false;
    }
    let mut kept = m.edits.clone();
    for _ in 0..32 {
        let Ok(all) = vmcs::entry::failures(&*v, caps, f, &*mem, selection) else { return true };
        let Some(first) = all.first() else { return true };
        if first as usize >= m.rule {
            return true;
        }
        let way = fixes[first as usize].iter().find(|w| !w.iter().any(|x| kept.iter().any(|e| e.conflicts(x))));
        let Some(way) = way else { return true };
        if !apply(schema, way, v, mem, caps, fv) {
            return true;
        }
        kept.extend_from_slice(way);
    }
    true
}

/// The capability MSRs as vmcs-gen's interpreter takes them.
pub fn interpreter_caps(caps: &VmxCaps) -> vmcs_gen::Caps {
    vmcs_gen::Caps::Msrs((0x480..0x4a0).map(|i| (i, caps.raw(i))).collect::<BTreeMap<_, _>>())
}

/// The facts in the order of the schema's `[[fact]]`s, as vmcs-gen's interpreter takes them.
pub fn fact_values(schema: &vmcs_gen::Schema, f: &Facts) -> Vec<u64> {
    let by_name: BTreeMap<&str, u64> = [
        ("maxphyaddr", f.maxphyaddr as u64),
        ("linear_width", f.linear_width as u64),
        ("efer_lma", f.efer_lma as u64),
        ("in_smm", f.in_smm as u64),
        ("current_vmcs", f.current_vmcs),
        ("efer_reserved", f.efer_reserved),
        ("debugctl_reserved", f.debugctl_reserved),
        ("perf_global_ctrl_reserved", f.perf_global_ctrl_reserved),
        ("rtit_ctl_reserved", f.rtit_ctl_reserved),
        ("rtm", f.rtm as u64),
        ("sgx", f.sgx as u64),
        ("sti_blocks_nmi_injection", f.sti_blocks_nmi_injection as u64),
        ("vmlaunch", f.vmlaunch as u64),
        ("launched", f.launched as u64),
        ("current_is_shadow", f.current_is_shadow as u64),
        ("mov_ss_blocked", f.mov_ss_blocked as u64),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_name.len(), schema.checks.facts.len(), "a fact is missing from this test");
    schema.checks.facts.iter().map(|x| by_name[x.name.as_str()]).collect()
}
