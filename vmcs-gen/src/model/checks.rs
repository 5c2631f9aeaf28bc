//! The VM-entry consistency checks of checks.toml, as the model holds them: rules with their
//! outcome and tier, the facts they read, and the defines they were written with. `checks/`
//! parses, type-checks, interprets and mutates them; the emitters turn them into the runtime's
//! checker.

use super::expr::{Expr, Ty};
use super::syntax::Node;
use super::{CapId, FieldId};
use crate::gate::Gate;

/// The rules of checks.toml, with the facts they read.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    /// The facts, in declaration order (rules refer to them by index).
    pub facts: Vec<Fact>,
    /// Defines, kept for documentation (rules hold them expanded).
    pub defines: Vec<Define>,
    /// Rule instances in check order (a rule with `segments` gives one per segment).
    pub rules: Vec<Rule>,
}

/// What the checks need beyond the VMCS and the capability MSRs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// snake_case, as rules name it, e.g. "maxphyaddr".
    pub name: String,
    pub(crate) ty: Ty,
    /// What it is and where a hypervisor gets it (e.g. a CPUID leaf).
    pub doc: String,
}

/// A named expression with parameters, expanded where it is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Define {
    /// The name rules call it by.
    pub name: String,
    /// Its parameters' names, in order.
    pub params: Vec<String>,
    pub(crate) body: Node,
    /// The expression as written.
    pub text: String,
    /// What it computes.
    pub doc: String,
}

/// What a processor does when a check fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// VMfailInvalid (CF = 1).
    VmFailInvalid,
    /// VMfailValid with this VM-instruction error (ZF = 1).
    VmFailValid(u32),
    /// A VM-entry failure: exit reason `reason` with bit 31 set and this exit qualification
    /// (None: the 1-based index of the failing MSR-load entry).
    EntryFailure {
        /// The basic exit reason: 33 (invalid guest state) or 34 (MSR loading).
        reason: u32,
        /// The exit qualification, when it is a constant.
        qualification: Option<u32>,
    },
}

impl Outcome {
    /// The outcome checks.toml writes as `s`: `VMfailInvalid`, `VMfailValid(N)`, `exit(33, Q)` or
    /// `exit(34)`; None for anything else.
    pub fn parse(s: &str) -> Option<Outcome> {
        let s = s.trim();
        if s == "VMfailInvalid" {
            return Some(Outcome::VmFailInvalid);
        }
        let args =
            |p: &str| s.strip_prefix(p)?.strip_suffix(')').map(|a| a.split(',').map(str::trim).collect::<Vec<_>>());
        if let Some(a) = args("VMfailValid(") {
            return match a.as_slice() {
                [n] => n.parse().ok().map(Outcome::VmFailValid),
                _ => None,
            };
        }
        let a = args("exit(")?;
        match a.as_slice() {
            ["33", q] => q.parse().ok().map(|q| Outcome::EntryFailure { reason: 33, qualification: Some(q) }),
            ["34"] => Some(Outcome::EntryFailure { reason: 34, qualification: None }),
            _ => None,
        }
    }

    /// The spelling [`Outcome::parse`] reads, e.g. `VMfailValid(7)`.
    pub fn text(self) -> String {
        match self {
            Outcome::VmFailInvalid => "VMfailInvalid".into(),
            Outcome::VmFailValid(n) => format!("VMfailValid({n})"),
            Outcome::EntryFailure { reason, qualification: Some(q) } => format!("exit({reason}, {q})"),
            Outcome::EntryFailure { reason, qualification: None } => format!("exit({reason})"),
        }
    }

    /// The tier of checks that produces this outcome.
    pub fn tier(self) -> Option<Tier> {
        Some(match self {
            Outcome::VmFailInvalid | Outcome::VmFailValid(4 | 5 | 26) => Tier::Basic,
            Outcome::VmFailValid(7) => Tier::Controls,
            Outcome::VmFailValid(8) => Tier::Host,
            Outcome::EntryFailure { reason: 33, .. } => Tier::Guest,
            Outcome::EntryFailure { reason: 34, qualification: None } => Tier::MsrLoad,
            _ => return None,
        })
    }
}

/// The SDM's groups of checks, in the order a processor applies them. Controls and host state
/// share a rank: the SDM lets a processor check them in either order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// 26.1: VMfailInvalid, VM-instruction errors 26, 4 and 5, in that order.
    Basic,
    /// 26.2.1: VM-execution, VM-exit and VM-entry control fields (error 7).
    Controls,
    /// 26.2.2-26.2.4: host-state area (error 8).
    Host,
    /// 26.3: guest-state area (exit reason 33).
    Guest,
    /// 26.4: MSR loading (exit reason 34).
    MsrLoad,
}

impl Tier {
    /// Every tier, in check order.
    pub const ALL: [Tier; 5] = [Tier::Basic, Tier::Controls, Tier::Host, Tier::Guest, Tier::MsrLoad];

    /// Rank in the check order (controls and host state together).
    pub fn rank(self) -> u32 {
        match self {
            Tier::Basic => 0,
            Tier::Controls | Tier::Host => 1,
            Tier::Guest => 2,
            Tier::MsrLoad => 3,
        }
    }

    /// The snake_case name checks.toml writes, e.g. "msr_load".
    pub fn name(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Controls => "controls",
            Tier::Host => "host",
            Tier::Guest => "guest",
            Tier::MsrLoad => "msr_load",
        }
    }

    /// The SDM section prefix of this tier's checks.
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            Tier::Basic => &["26.1"],
            Tier::Controls => &["26.2.1"],
            Tier::Host => &["26.2.2", "26.2.3", "26.2.4"],
            Tier::Guest => &["26.3"],
            Tier::MsrLoad => &["26.4"],
        }
    }
}

/// A segment register the guest-state checks name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// ES.
    Es,
    /// CS.
    Cs,
    /// SS.
    Ss,
    /// DS.
    Ds,
    /// FS.
    Fs,
    /// GS.
    Gs,
    /// LDTR.
    Ldtr,
    /// TR.
    Tr,
}

impl Segment {
    /// Every segment register the checks name.
    pub const ALL: [Segment; 8] =
        [Segment::Es, Segment::Cs, Segment::Ss, Segment::Ds, Segment::Fs, Segment::Gs, Segment::Ldtr, Segment::Tr];

    /// The segment named `s` as in field names ([`Segment::name`]), or None.
    pub fn parse(s: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|g| g.name() == s)
    }

    /// The name used in field names (`GUEST_ES_SELECTOR`).
    pub fn name(self) -> &'static str {
        match self {
            Segment::Es => "ES",
            Segment::Cs => "CS",
            Segment::Ss => "SS",
            Segment::Ds => "DS",
            Segment::Fs => "FS",
            Segment::Gs => "GS",
            Segment::Ldtr => "LDTR",
            Segment::Tr => "TR",
        }
    }
}

/// One check (an instance, for a rule declared over several segments).
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique: the declared name, with `_<segment>` for a per-segment instance.
    pub name: String,
    /// Index of the `[[rule]]` declaration (shared by the instances of a per-segment rule).
    pub declaration: usize,
    /// The segment of a per-segment instance.
    pub segment: Option<Segment>,
    /// The rule's row id in the catalogue of VM-entry checks it was transcribed from (e.g. "E19"):
    /// a stable key; `section` is the SDM text to read.
    pub reference: String,
    /// SDM section, e.g. "26.2.1.1".
    pub section: String,
    /// What the processor does when the check fails.
    pub outcome: Outcome,
    /// The group of checks it belongs to, which orders it against the others.
    pub tier: Tier,
    /// Where the rule applies (a capability gate): it is never evaluated elsewhere.
    pub gate: Option<Gate<CapId>>,
    /// Holds on a valid VMCS.
    pub(crate) check: Expr,
    /// The check as written (with `seg` for per-segment rules).
    pub text: String,
    /// What the check requires, in words (the text an error report shows).
    pub doc: String,
    /// The Linux 7.2.8 function that checks it for vmcs12, if any.
    pub kvm: Option<String>,
    /// KVM applies it to a vmcs12 restored by KVM_SET_NESTED_STATE (`nested_vmx_check_restored_vmcs12`).
    pub kvm_restore: bool,
}

impl Rule {
    /// The fields its check reads directly (not those behind control words).
    pub fn fields(&self) -> Vec<FieldId> {
        self.check.fields()
    }
}

impl Checks {
    /// The rule (instance) named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
    /// Number of `[[rule]]` declarations.
    pub fn declarations(&self) -> usize {
        self.rules.last().map_or(0, |r| r.declaration + 1)
    }
}
