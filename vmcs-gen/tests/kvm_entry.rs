//! The rules a nested L0 checks on vmcs12 while the last exit's rare guest state is still in
//! vmcs02 (`vmcs::entry::Selection::KVM_ENTRY`: every rule of 26.1-26.2, of 26.3 those KVM 7.2.8
//! checks in software) read no field the deferred sync owes vmcs12 (the `runs = "lazy"` sets):
//! vmcs12's stale copies of those fields never decide a VMRESUME.

use std::collections::BTreeSet;

use vmcs_gen::Schema;
use vmcs_gen::model::{Runs, Tier};

#[test]
fn kvm_entry_rules_read_no_lazily_synced_field() {
    let schema = Schema::shipped().unwrap();
    let lazy: BTreeSet<_> =
        schema.sets.iter().filter(|s| s.runs == Runs::Lazy).flat_map(|s| s.items.iter().map(|i| i.field)).collect();
    assert_eq!(lazy.len(), 35, "KVM's sync_vmcs02_to_vmcs12_rare");
    let selected = |tier: Tier, kvm: bool| match tier {
        Tier::Basic | Tier::Controls | Tier::Host => true,
        Tier::Guest => kvm,
        Tier::MsrLoad => false,
    };
    let mut checked = 0;
    for rule in schema.checks.rules.iter().filter(|r| selected(r.tier, r.kvm.is_some())) {
        checked += 1;
        let stale: Vec<_> =
            rule.fields().into_iter().filter(|f| lazy.contains(f)).map(|f| &schema.fields[f].name).collect();
        assert!(stale.is_empty(), "{} ({}) reads {stale:?}, which vmcs02 may still hold", rule.name, rule.section);
    }
    // The guest-state rules that read them are left to the processor's checks of vmcs02.
    let guest_reading_lazy = schema
        .checks
        .rules
        .iter()
        .filter(|r| r.tier == Tier::Guest && r.kvm.is_none() && r.fields().iter().any(|f| lazy.contains(f)));
    assert!(guest_reading_lazy.count() > 40);
    assert!(checked > 150, "{checked} rules");
}
