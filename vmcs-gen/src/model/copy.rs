//! The copy-set part of the model: predicates, hooks, sets and their entries, and the analysis the
//! checking pass and the emitter share (what an entry reads, the dirty-tracked entries).

use crate::encoding::Width;
use crate::gate::Gate;
use crate::model::{CapId, FieldId, Pos, Schema};

/// Index of a predicate in [`Schema::predicates`].
pub type PredId = usize;
/// Index of a hook in [`Schema::hooks`].
pub type HookId = usize;

/// A fact only the hypervisor knows; a method of the generated `NestedHooks` trait.
#[derive(Clone, Debug)]
pub struct Predicate {
    /// snake_case: the method's name.
    pub name: String,
    /// What it tells, and where KVM keeps the same fact.
    pub doc: String,
}

/// A value the hypervisor computes: a method of `NestedHooks` returning `ty` from `inputs`.
#[derive(Clone, Debug)]
pub struct Hook {
    /// snake_case: the method's name, named after what it produces.
    pub name: String,
    /// What it computes, and which KVM code computes the same.
    pub doc: String,
    /// The width of the value it returns: that of every field it is the source of.
    pub ty: Width,
    /// Its arguments, in order.
    pub inputs: Vec<HookInput>,
}

/// One argument of a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookInput {
    /// A field of a role, passed with its width.
    Field(Role, FieldId),
    /// A control bit of vmcs12, passed as `bool`.
    Control(CapId),
}

/// A term of a copy condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// A predicate's value.
    Pred(PredId),
    /// The capability's control bit in vmcs12 (with its MSR's `requires`).
    Control(CapId),
}

/// Where an entry's new value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The same field of the source role.
    Copy,
    /// Another field of the source role.
    From(FieldId),
    /// A constant (already truncated to the destination's width).
    Value(u64),
    /// What the hook returns.
    Hook(HookId),
}

/// How a destination field gets its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Treatment {
    /// Where the new value comes from.
    pub source: Source,
    /// Keep only these bits of the new value.
    pub mask: Option<u64>,
    /// Change only these bits of the destination.
    pub merge: Option<u64>,
}

impl Treatment {
    /// A plain or masked copy of L1's value (no hook, no constant).
    pub fn is_raw(&self) -> bool {
        matches!(self.source, Source::Copy | Source::From(_))
    }
}

/// One entry of a copy set.
#[derive(Clone, Debug)]
pub struct CopyItem {
    /// The destination field.
    pub field: FieldId,
    /// How it gets its value when the condition holds (always, without one).
    pub treat: Treatment,
    /// The entry applies only if this holds.
    pub when: Option<Gate<Term>>,
    /// The entry applies only if this does not hold.
    pub unless: Option<Gate<Term>>,
    /// What the field gets when the condition is false.
    pub otherwise: Option<Treatment>,
    /// Where the entry is written (its `field`).
    pub pos: Pos,
}

impl CopyItem {
    /// `treat`, then `otherwise` if there is one.
    pub fn treatments(&self) -> impl Iterator<Item = &Treatment> {
        std::iter::once(&self.treat).chain(&self.otherwise)
    }
    /// A plain copy of the same field (whatever its condition): the destination then equals the
    /// source, which lets an exit copy into vmcs12 skip dirty tracking.
    pub fn is_plain(&self) -> bool {
        self.treat == Treatment { source: Source::Copy, mask: None, merge: None } && self.otherwise.is_none()
    }
    /// The terms of `when` and `unless`, in order (adjacent repeats removed).
    pub fn terms(&self) -> Vec<Term> {
        let mut v: Vec<Term> = self.when.iter().chain(&self.unless).flat_map(|g| g.caps()).copied().collect();
        v.dedup();
        v
    }
    /// Predicates the condition names.
    pub fn predicates(&self) -> Vec<PredId> {
        let mut v: Vec<PredId> =
            self.terms().into_iter().filter_map(|t| if let Term::Pred(p) = t { Some(p) } else { None }).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// When a set runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// On every nested VM entry.
    Entry,
    /// On every nested VM exit to L1.
    Exit,
    /// vmcs02 -> vmcs12 when L0 needs vmcs12 current (deferred from the exit).
    Lazy,
    /// When the hypervisor calls it.
    Demand,
}

impl Runs {
    /// The schema spelling: "entry", "exit", "lazy" or "demand"; None for any other text.
    pub fn parse(s: &str) -> Option<Runs> {
        Some(match s {
            "entry" => Runs::Entry,
            "exit" => Runs::Exit,
            "lazy" => Runs::Lazy,
            "demand" => Runs::Demand,
            _ => return None,
        })
    }
}

/// Which copy of a nested guest's VMCS a set reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The software VMCS L1 sees (layout `vmcs12`).
    Vmcs12,
    /// The VMCS L0 runs L2 on.
    Vmcs02,
    /// The VMCS L0 runs L1 on.
    Vmcs01,
    /// The shadow VMCS serving L1's VMREAD/VMWRITE without exits.
    Shadow,
    /// Hyper-V's enlightened VMCS (layout `evmcs`), which L1 writes in memory.
    Evmcs,
}

impl Role {
    /// The role a copy set names by `s` ([`Role::as_str`]), or None for any other text.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "vmcs12" => Role::Vmcs12,
            "vmcs02" => Role::Vmcs02,
            "vmcs01" => Role::Vmcs01,
            "shadow" => Role::Shadow,
            "evmcs" => Role::Evmcs,
            _ => return None,
        })
    }
    /// The schema spelling: "vmcs12", "vmcs02", "vmcs01", "shadow", "evmcs".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Vmcs12 => "vmcs12",
            Role::Vmcs02 => "vmcs02",
            Role::Vmcs01 => "vmcs01",
            Role::Shadow => "shadow",
            Role::Evmcs => "evmcs",
        }
    }
    /// The software layout a role stands for, if it is one.
    pub fn layout(self) -> Option<&'static str> {
        match self {
            Role::Vmcs12 => Some("vmcs12"),
            Role::Evmcs => Some("evmcs"),
            Role::Vmcs02 | Role::Vmcs01 | Role::Shadow => None,
        }
    }
}

/// How a shadowed field is exposed to L1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowAccess {
    /// VMREAD without exit; VMWRITE exits.
    ReadOnly,
    /// VMREAD and VMWRITE without exit.
    ReadWrite,
}

/// A named, ordered copy between two roles.
#[derive(Clone, Debug)]
pub struct CopySet {
    /// snake_case: the generated function's name.
    pub name: String,
    /// What the set is for, and the KVM routine it matches.
    pub doc: String,
    /// The role it reads.
    pub from: Role,
    /// The role it writes.
    pub to: Role,
    /// When it runs.
    pub runs: Runs,
    /// Copy an entry only when one of its inputs changed since it was last copied.
    pub dirty: bool,
    /// Skip the groups the source eVMCS marks clean.
    pub clean: bool,
    /// For a set that serves L1 through the shadow VMCS: the access its fields get, from which
    /// the VMREAD/VMWRITE bitmaps are generated.
    pub shadow: Option<ShadowAccess>,
    /// Its entries, in the order they run (an entry may read what an earlier one wrote).
    pub items: Vec<CopyItem>,
}

impl CopySet {
    /// `[from, to]`.
    pub fn roles(&self) -> [Role; 2] {
        [self.from, self.to]
    }
    /// Whether the generated function takes the hooks (for predicates or hooks).
    pub fn uses_hooks(&self) -> bool {
        self.items
            .iter()
            .any(|i| !i.predicates().is_empty() || i.treatments().any(|t| matches!(t.source, Source::Hook(_))))
    }
}

impl Schema {
    /// The copy set named `name`.
    pub fn set(&self, name: &str) -> Option<&CopySet> {
        self.sets.iter().find(|s| s.name == name)
    }
    /// The hook named `name`.
    pub fn hook(&self, name: &str) -> Option<HookId> {
        self.hooks.iter().position(|h| h.name == name)
    }

    /// The vmcs12 control field and bit a capability stands for in a condition.
    pub fn control_bit(&self, cap: CapId) -> Option<(FieldId, u32)> {
        Some((self.msr_of(cap).control_field?, self.caps[cap].bit))
    }

    /// The vmcs12 fields a control term reads: its field and those of its MSR's `requires`.
    pub fn control_fields(&self, cap: CapId) -> Vec<FieldId> {
        let (mut out, mut seen) = (Vec::new(), Vec::new());
        let mut todo = vec![cap];
        while let Some(c) = todo.pop() {
            if seen.contains(&c) {
                continue; // a `requires` cycle (reported by the capability loader)
            }
            seen.push(c);
            if let Some((f, _)) = self.control_bit(c)
                && !out.contains(&f)
            {
                out.push(f);
            }
            if let Some(r) = &self.msr_of(c).requires {
                todo.extend(r.caps().into_iter().copied());
            }
        }
        out
    }

    /// Every (role, field) an entry of `set` reads: its source, its hooks' inputs and the control
    /// fields of its condition, for both branches.
    pub fn item_inputs(&self, set: &CopySet, item: &CopyItem) -> Vec<(Role, FieldId)> {
        let mut v = Vec::new();
        let mut add = |x: (Role, FieldId)| {
            if !v.contains(&x) {
                v.push(x);
            }
        };
        for t in item.treatments() {
            match t.source {
                Source::Copy => add((set.from, item.field)),
                Source::From(f) => add((set.from, f)),
                Source::Value(_) => {}
                Source::Hook(h) => {
                    for input in &self.hooks[h].inputs {
                        match *input {
                            HookInput::Field(r, f) => add((r, f)),
                            HookInput::Control(c) => {
                                self.control_fields(c).into_iter().for_each(|f| add((Role::Vmcs12, f)))
                            }
                        }
                    }
                }
            }
            if t.merge.is_some() {
                add((set.to, item.field));
            }
        }
        for t in item.terms() {
            if let Term::Control(c) = t {
                self.control_fields(c).into_iter().for_each(|f| add((Role::Vmcs12, f)));
            }
        }
        v
    }

    /// The values of `item` that its set watches rather than dirty-tracks: the predicates and control
    /// bits of its condition and its hooks' control-bit inputs, in order (repeats removed). An
    /// entry of a dirty set is copied again when one of them changed since the set last ran.
    pub fn item_watched(&self, item: &CopyItem) -> Vec<Term> {
        let mut v = item.terms();
        for t in item.treatments() {
            if let Source::Hook(h) = t.source {
                v.extend(self.hooks[h].inputs.iter().filter_map(|i| match *i {
                    HookInput::Control(c) => Some(Term::Control(c)),
                    HookInput::Field(..) => None,
                }));
            }
        }
        distinct(v)
    }

    /// What a dirty set watches ([`Schema::item_watched`] of all its entries, in order): bit k of
    /// the value it remembers is the k-th.
    pub fn set_watched(&self, set: &CopySet) -> Vec<Term> {
        distinct(set.items.iter().flat_map(|i| self.item_watched(i)))
    }

    /// The vmcs12 fields whose value (not one control bit of it) an entry reads: its source and its
    /// hooks' field inputs. A write of one dirties the entry even when it leaves the value as it was
    /// (vmcs12's copy may be older than vmcs02's while a lazy sync is pending).
    fn item_value_inputs(&self, set: &CopySet, item: &CopyItem) -> Vec<FieldId> {
        let mut v = Vec::new();
        for t in item.treatments() {
            match t.source {
                Source::Copy => v.push((set.from, item.field)),
                Source::From(f) => v.push((set.from, f)),
                Source::Value(_) => {}
                Source::Hook(h) => v.extend(self.hooks[h].inputs.iter().filter_map(|i| match *i {
                    HookInput::Field(r, f) => Some((r, f)),
                    HookInput::Control(_) => None,
                })),
            }
        }
        v.into_iter().filter(|&(r, _)| r == Role::Vmcs12).map(|(_, f)| f).collect()
    }

    /// Dirty-tracked entries in schema order: (set index, item index). Entry n has dirty bit n.
    pub fn dirty_items(&self) -> Vec<(usize, usize)> {
        self.sets
            .iter()
            .enumerate()
            .filter(|(_, s)| s.dirty)
            .flat_map(|(si, s)| (0..s.items.len()).map(move |ii| (si, ii)))
            .collect()
    }

    /// The dirty bits a write of vmcs12 field `f` sets: every dirty entry that reads its value. A
    /// control bit an entry depends on dirties nothing: the set watches it ([`Schema::item_watched`]),
    /// so a write that leaves that bit alone (L1 opening an interrupt window) copies nothing again.
    pub fn dirtied_by(&self, f: FieldId) -> Vec<usize> {
        self.dirty_items()
            .into_iter()
            .enumerate()
            .filter(|(_, (si, ii))| {
                let set = &self.sets[*si];
                self.item_value_inputs(set, &set.items[*ii]).contains(&f)
            })
            .map(|(n, _)| n)
            .collect()
    }

    /// The dirty bit of the entry of a dirty set whose destination is `f`, if any.
    pub fn dirty_bit_of(&self, f: FieldId) -> Option<usize> {
        self.dirty_items().into_iter().position(|(si, ii)| self.sets[si].items[ii].field == f)
    }
}

/// The items of `v` in order, each once.
fn distinct<T: PartialEq>(v: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for t in v {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
