//! Model test of the copy routines: random sequences of L1 VMWRITEs and VMREADs (through the shadow
//! VMCS too), nested entries, L2 running, exits (also failed and refused entries), VMPTRLD and
//! migration, on random capability sets. After every entry, vmcs02 must equal what the simplest
//! correct L0 gets, KVM's dirty path: vmcs12 fully synced on every exit and every field copied on
//! every entry. After every exit, vmcs01 likewise; and every L1 VMREAD sees what it would there.

mod common;
mod copy_support;

use common::Rng;
use copy_support::{ExitFacts, TestHooks};
use vmcs::caps::VmxCaps;
use vmcs::copy::{self, ExitKind, Tracked};
use vmcs::soft::SoftVmcs;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite, fields};
use vmcs_gen::Schema;
use vmcs_gen::model::{Role, Runs, Term};

const CAP_SETS: u64 = 50;
const SEQUENCES_PER_SET: u64 = 200;
const STEPS: usize = 40;

/// What the sets read and write, from the schema.
struct Plan {
    /// vmcs02 fields an entry writes (compared after every entry).
    consumed: Vec<u64>,
    /// vmcs01 fields an exit writes.
    host: Vec<u64>,
    /// vmcs02 fields the exit sets read: what the processor saves when L2 exits.
    saved: Vec<u64>,
    /// Guest state an entry copies plainly but no exit reads back: L0 writes it through to vmcs12.
    written_through: Vec<u64>,
    /// Every vmcs12 field, as L1 may VMWRITE it.
    writable: Vec<u64>,
    /// vmcs12 control fields and the bits of each a dirty set watches (its entries depend on those
    /// bits alone, not on the field's value).
    watched: Vec<(u64, u64)>,
}

impl Plan {
    fn new() -> Plan {
        let schema = Schema::shipped().unwrap();
        let enc = |f: usize| schema.fields[f].encoding.raw() as u64;
        let mut p = Plan {
            consumed: vec![],
            host: vec![],
            saved: vec![],
            written_through: vec![],
            writable: vec![],
            watched: vec![],
        };
        let mut mirrored = vec![];
        for s in &schema.sets {
            for i in &s.items {
                if (s.runs, s.to) == (Runs::Entry, Role::Vmcs02) && i.is_plain() {
                    mirrored.push(enc(i.field));
                }
                match (s.runs, s.to) {
                    (Runs::Entry, Role::Vmcs02) => p.consumed.push(enc(i.field)),
                    (Runs::Exit, Role::Vmcs01) => p.host.push(enc(i.field)),
                    _ => {}
                }
                if s.from == Role::Vmcs02 {
                    for (r, f) in schema.item_inputs(s, i) {
                        if r == Role::Vmcs02 {
                            p.saved.push(enc(f));
                        }
                    }
                }
            }
        }
        // Plain copies of guest state L2 can change only through L0 (e.g. SYSENTER MSRs).
        for &e in &mirrored {
            let f = schema.fields.iter().find(|f| f.encoding.raw() as u64 == e).unwrap();
            if f.kind == vmcs_gen::Kind::GuestState && !p.saved.contains(&e) {
                p.written_through.push(e);
            }
        }
        for s in schema.sets.iter().filter(|s| s.dirty) {
            for t in schema.set_watched(s) {
                let Term::Control(c) = t else { continue };
                let mut caps = vec![c];
                caps.extend(schema.msr_of(c).requires.iter().flat_map(|r| r.caps()).copied());
                for (f, bit) in caps.into_iter().filter_map(|c| schema.control_bit(c)) {
                    match p.watched.iter_mut().find(|(e, _)| *e == enc(f)) {
                        Some((_, m)) => *m |= 1 << bit,
                        None => p.watched.push((enc(f), 1 << bit)),
                    }
                }
            }
        }
        p.writable = <Vmcs12 as Layout>::MAPPED.iter().map(|&e| e as u64).collect();
        for v in [&mut p.consumed, &mut p.host, &mut p.saved, &mut p.written_through] {
            v.sort();
            v.dedup();
        }
        p
    }
}

/// A random capability set: any allowed-1 bits, TRUE controls, IA32_VMX_MISC bit 29 (the test
/// stores exit information into vmcs02 as the processor would).
fn caps(rng: &mut Rng) -> VmxCaps {
    let mut c = VmxCaps::new();
    for i in 0x480..=0x493u32 {
        let v = match rng.next() % 3 {
            0 => rng.next() | rng.next(),
            1 => rng.next(),
            _ => u64::MAX,
        };
        c.set(i, v);
    }
    c.set(0x480, c.raw(0x480) | 1 << 55);
    c.set(0x485, c.raw(0x485) | 1 << 29);
    c
}

/// A uniform index below `n`.
fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next() % n as u64) as usize
}

/// A value for a field: often small, zero or all ones; control fields get random bits.
fn value(rng: &mut Rng) -> u64 {
    match rng.next() % 6 {
        0 => 0,
        1 => u64::MAX,
        2 => rng.next() & 0xffff,
        _ => rng.next(),
    }
}

struct World<'a> {
    plan: &'a Plan,
    caps: VmxCaps,
    shadowing: bool,
    // The system under test.
    v12: Tracked<Vmcs12>,
    v02: SoftVmcs,
    v01: SoftVmcs,
    shadow: SoftVmcs,
    // KVM's dirty path.
    r12: Vmcs12,
    r02: SoftVmcs,
    r01: SoftVmcs,
    hooks: TestHooks,
    in_l2: bool,
    entries: u64,
    /// Control-bit flips by L1: [of bits no entry depends on, of watched bits].
    flips: [u64; 2],
}

impl World<'_> {
    fn shadowed_rw(&self, e: u64) -> bool {
        self.shadowing && copy::SHADOW_READ_WRITE.contains(&(e as u32)) && self.shadow.exists(e)
    }

    fn l1_vmwrite(&mut self, rng: &mut Rng) {
        let plan = self.plan;
        let mut e = plan.writable[pick(rng, plan.writable.len())];
        if fields::ALL.iter().any(|f| f.encoding as u64 == e && f.width == fields::FieldWidth::W64)
            && rng.next().is_multiple_of(4)
        {
            e |= 1; // the high half
        }
        self.l1_write(e, value(rng));
    }

    /// L1's VMWRITE of a control field a dirty set watches bits of: one bit flipped, a watched one
    /// or one no entry depends on (then nothing may be copied again, and nothing needs to be).
    fn l1_vmwrite_control(&mut self, rng: &mut Rng) {
        let (e, watched) = self.plan.watched[pick(rng, self.plan.watched.len())];
        let flip = if rng.next().is_multiple_of(2) { watched } else { !watched & 0xffff_ffff };
        let bits: Vec<u32> = (0..32).filter(|b| flip >> b & 1 == 1).collect();
        let bit = bits[pick(rng, bits.len())];
        let old = self.r12.read_raw(e).unwrap();
        self.flips[(watched >> bit & 1) as usize] += 1;
        self.l1_write(e, old ^ 1 << bit);
    }

    fn l1_write(&mut self, e: u64, v: u64) {
        if self.shadowed_rw(e) {
            self.shadow.write_raw(e, v).unwrap();
        } else {
            self.v12.write_raw(e, v).unwrap();
            // The VMWRITE exited; a read-only shadow field is written through (KVM handle_vmwrite).
            if self.shadowing && copy::SHADOW_READ_ONLY.contains(&(e as u32 & !1)) && self.shadow.exists(e) {
                self.shadow.write_raw(e, v).unwrap();
            }
        }
        self.r12.write_raw(e, v).unwrap();
    }

    fn l1_vmread(&mut self, rng: &mut Rng) {
        let plan = self.plan;
        let e = plan.writable[pick(rng, plan.writable.len())];
        let shadowed = self.shadowing
            && (copy::SHADOW_READ_WRITE.contains(&(e as u32)) || copy::SHADOW_READ_ONLY.contains(&(e as u32)))
            && self.shadow.exists(e);
        let got = if shadowed {
            self.shadow.read_raw(e).unwrap()
        } else {
            if self.v12.needs_lazy_sync(e) {
                copy::sync_rare(&self.v02, &mut self.v12, &self.caps).unwrap();
            }
            self.v12.read_raw(e).unwrap()
        };
        assert_eq!(got, self.r12.read_raw(e).unwrap(), "L1 VMREAD {e:#x}");
    }

    fn randomize_l0(&mut self, rng: &mut Rng) {
        let h = &mut self.hooks;
        h.run_pending = !rng.next().is_multiple_of(8);
        h.pae_paging = rng.next().is_multiple_of(2);
        h.l1_pae_paging = rng.next().is_multiple_of(2);
        h.guest_ibt_or_shstk = rng.next().is_multiple_of(2);
        h.guest_shstk = rng.next().is_multiple_of(2);
        h.pfec_from_vmcs12 = !rng.next().is_multiple_of(4);
        h.host_apicv = rng.next().is_multiple_of(2);
        h.vpmu_perf_global_ctrl = rng.next().is_multiple_of(2);
        h.encls_exiting = rng.next().is_multiple_of(2);
        if rng.next().is_multiple_of(4) {
            h.l1[pick(rng, 7)] = rng.next();
            h.l1_tsc_offset = rng.next();
        }
    }

    /// A nested entry: L1's VMLAUNCH/VMRESUME (`from_l1`), or a state restore.
    fn entry(&mut self, from_l1: bool) {
        if self.shadowing && from_l1 {
            copy::shadow_read_write_back(&self.shadow, &mut self.v12, &self.caps).unwrap();
        }
        copy::nested_entry(&mut self.v12, &mut self.v02, &self.caps, &mut self.hooks).unwrap();
        let mut r = Tracked::new(self.r12);
        copy::nested_entry(&mut r, &mut self.r02, &self.caps, &mut self.hooks).unwrap();
        self.r12 = r.into_inner();
        for &e in &self.plan.consumed {
            if self.v02.exists(e) {
                let (got, want) = (self.v02.read_raw(e).unwrap(), self.r02.read_raw(e).unwrap());
                assert_eq!(got, want, "vmcs02 {e:#x} after entry {} (copy-everything gives {want:#x})", self.entries);
            }
        }
        self.entries += 1;
        self.in_l2 = true;
    }

    /// L2 runs: the processor changes what it saves on exit; L0 handles exits in between and
    /// writes what it emulates through to vmcs12 (KVM's write-throughs).
    fn l2_runs(&mut self, rng: &mut Rng) {
        for _ in 0..pick(rng, 6) {
            let e = self.plan.saved[pick(rng, self.plan.saved.len())];
            // CR3 and the PDPTRs are L2's (saved by the processor) only with L0's EPT in vmcs02.
            let paging = e == fields::GUEST_CR3.raw() || (0x280a..=0x2811).contains(&e);
            if self.v02.exists(e) && (self.hooks.l0_ept || !paging) {
                // The processor saves no reserved access-rights bits (31:17, 11:8).
                let ar = (0x4814..=0x4822).contains(&e);
                let v = if ar { value(rng) & 0x1f0ff } else { value(rng) };
                self.v02.write_raw(e, v).unwrap();
                self.r02.write_raw(e, v).unwrap();
            }
        }
        if rng.next().is_multiple_of(4) {
            let e = self.plan.written_through[pick(rng, self.plan.written_through.len())];
            if self.v02.exists(e) {
                let v = value(rng);
                self.v02.write_raw(e, v).unwrap();
                self.r02.write_raw(e, v).unwrap();
                let v = self.v02.read_raw(e).unwrap();
                self.v12.write_untracked(e, v).unwrap();
                self.r12.write_raw(e, v).unwrap();
            }
        }
        let h = &mut self.hooks;
        (h.l2_activity, h.l2_timer, h.l2_dr7, h.l2_efer) =
            (rng.next() as u32 % 4, rng.next() as u32, rng.next(), rng.next());
    }

    fn exit(&mut self, kind: ExitKind, rng: &mut Rng) {
        self.hooks.exit = ExitFacts {
            reason: rng.next() as u32,
            qualification: rng.next(),
            intr_info: rng.next() as u32,
            intr_error_code: rng.next() as u32,
            idt_vectoring_info: rng.next() as u32,
            idt_vectoring_error_code: rng.next() as u32,
            instruction_len: rng.next() as u32 % 16,
            guest_physical_address: rng.next(),
        };
        self.hooks.run_pending = false;
        copy::exit_to_vmcs12(kind, &self.v02, &mut self.v12, &self.caps, &mut self.hooks).unwrap();
        copy::load_host_state(self.v12.inner(), &mut self.v01, &self.caps, &mut self.hooks).unwrap();
        if self.shadowing {
            copy::shadow_read_write(&self.v12, &mut self.shadow, &self.caps).unwrap();
            copy::shadow_read_only(&self.v12, &mut self.shadow, &self.caps).unwrap();
        }
        // KVM's path: every field synced at once.
        let mut r = Tracked::new(self.r12);
        for b in 0..copy::DIRTY_BITS {
            r.clean(b);
        }
        copy::exit_to_vmcs12(kind, &self.r02, &mut r, &self.caps, &mut self.hooks).unwrap();
        copy::sync_rare(&self.r02, &mut r, &self.caps).unwrap();
        self.r12 = r.into_inner();
        copy::load_host_state(&self.r12, &mut self.r01, &self.caps, &mut self.hooks).unwrap();
        for &e in &self.plan.host {
            if self.v01.exists(e) {
                assert_eq!(self.v01.read_raw(e).unwrap(), self.r01.read_raw(e).unwrap(), "vmcs01 {e:#x}");
            }
        }
        self.in_l2 = false;
    }

    /// VMCLEAR and VMPTRLD of the same VMCS, or migration (save, restore into a fresh vmcs02).
    fn reload(&mut self, migrate: bool) {
        if self.shadowing && !self.in_l2 {
            copy::shadow_read_write_back(&self.shadow, &mut self.v12, &self.caps).unwrap();
        }
        copy::sync_for_save(self.in_l2, &self.v02, &mut self.v12, &self.caps, &mut self.hooks).unwrap();
        if self.in_l2 {
            // Saved while L2 runs: KVM's get syncs L2's state; the reference syncs it likewise.
            let mut r = Tracked::new(self.r12);
            for b in 0..copy::DIRTY_BITS {
                r.clean(b);
            }
            copy::sync_for_save(true, &self.r02, &mut r, &self.caps, &mut self.hooks).unwrap();
            self.r12 = r.into_inner();
        }
        assert_eq!(self.v12.inner().as_bytes(), self.r12.as_bytes(), "the saved vmcs12");
        self.v12 = Tracked::new(*self.v12.inner());
        if migrate {
            self.v02 = SoftVmcs::new(&self.caps);
            self.r02 = SoftVmcs::new(&self.caps);
            if self.in_l2 {
                // KVM_SET_NESTED_STATE in guest mode: a normal entry, without a pending run.
                self.in_l2 = false;
                let pending = self.hooks.run_pending;
                self.hooks.run_pending = false;
                self.entry(false);
                self.hooks.run_pending = pending;
            }
        }
    }
}

/// Runs one sequence; returns the entries compared and L1's control-bit flips.
fn sequence(plan: &Plan, caps: &VmxCaps, rng: &mut Rng) -> (u64, [u64; 2]) {
    let mut hooks = TestHooks::new();
    hooks.l0_ept = !rng.next().is_multiple_of(4);
    hooks.l0_vpid = rng.next().is_multiple_of(2);
    let mut start = Vmcs12::zeroed();
    for &e in &plan.writable {
        start.write_raw(e, value(rng)).unwrap();
    }
    let mut w = World {
        plan,
        caps: *caps,
        shadowing: rng.next().is_multiple_of(3),
        v12: Tracked::new(start),
        v02: SoftVmcs::new(caps),
        v01: SoftVmcs::new(caps),
        shadow: SoftVmcs::new(caps),
        r12: start,
        r02: SoftVmcs::new(caps),
        r01: SoftVmcs::new(caps),
        hooks,
        in_l2: false,
        entries: 0,
        flips: [0; 2],
    };
    if w.shadowing {
        copy::shadow_read_write(&w.v12, &mut w.shadow, caps).unwrap();
        copy::shadow_read_only(&w.v12, &mut w.shadow, caps).unwrap();
    }
    for _ in 0..STEPS {
        let op = rng.next() % 100;
        match (w.in_l2, op) {
            (false, 0..30) => w.l1_vmwrite(rng),
            (false, 30..40) => w.l1_vmwrite_control(rng),
            (false, 40..55) => w.l1_vmread(rng),
            (false, 55..57) => w.reload(false),
            (false, 57..60) => {
                // VMLAUNCH/VMRESUME whose checks fail: vmcs12 gets L1's shadow writes first (KVM).
                w.randomize_l0(rng);
                if w.shadowing {
                    copy::shadow_read_write_back(&w.shadow, &mut w.v12, &w.caps).unwrap();
                }
                w.exit(ExitKind::RefusedEntry, rng);
            }
            (false, _) => {
                w.randomize_l0(rng);
                w.entry(true);
            }
            (true, 0..50) => w.l2_runs(rng),
            (true, 50..53) => w.reload(true),
            (true, 53..56) => w.exit(ExitKind::FailedEntry, rng),
            (true, _) => w.exit(ExitKind::Exit, rng),
        }
    }
    (w.entries, w.flips)
}

#[test]
fn vmcs02_equals_copying_everything_after_every_entry() {
    let plan = Plan::new();
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let (mut sequences, mut entries, mut flips) = (0u64, 0u64, [0u64; 2]);
    let mut sets = std::collections::BTreeSet::new();
    for _ in 0..CAP_SETS {
        let caps = caps(&mut rng);
        sets.insert((0x480..=0x493u32).map(|i| caps.raw(i)).collect::<Vec<_>>());
        for _ in 0..SEQUENCES_PER_SET {
            let (e, f) = sequence(&plan, &caps, &mut rng);
            entries += e;
            flips = [flips[0] + f[0], flips[1] + f[1]];
            sequences += 1;
        }
    }
    println!("{sequences} sequences on {} capability sets, {entries} entries compared", sets.len());
    println!("L1 flipped {} control bits entries depend on, {} they do not", flips[1], flips[0]);
    assert!(flips[0] > 10_000 && flips[1] > 10_000, "{flips:?}");
    assert!(sequences >= 10_000 && sets.len() >= 50);
    assert!(entries > 50_000, "{entries}");
}
