//! One struct per kind of schema table, field by field as written (each value with its span).

use toml::Spanned;
use toml::de::DeValue;

use super::S;
use super::decode::{self, FromToml, schema_table};

schema_table! {
    /// `[[field]]` in fields.toml.
    pub struct RawField {
        name: S<String>,
        encoding: S<i64>,
        width: S<String>,
        kind: S<String>,
        gate: Option<S<String>>,
        doc: S<String>,
        source: Option<S<String>>,
        guest_physical: Option<S<bool>>,
        l0_owned: Option<S<String>>,
    }
}

schema_table! {
    /// `[[msr]]` in capabilities.toml.
    pub struct RawMsr {
        name: S<String>,
        index: S<i64>,
        true_index: Option<S<i64>>,
        kind: S<String>,
        /// The VMCS control field whose allowed settings the MSR reports.
        field: Option<S<String>>,
        requires: Option<S<String>>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[cap]]` in capabilities.toml.
    pub struct RawCap {
        name: S<String>,
        msr: S<String>,
        bit: S<i64>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[reason]]` in exits.toml.
    pub struct RawReason {
        number: S<i64>,
        name: S<String>,
        doc: S<String>,
        qualification: Option<S<String>>,
    }
}

schema_table! {
    /// `[[bitfield]]` in exits.toml.
    pub struct RawBitfield {
        name: S<String>,
        fields: S<Vec<S<String>>>,
        doc: S<String>,
        bits: Vec<RawBits> = default,
    }
}

schema_table! {
    /// `[[bitfield.bits]]`: a named bit range.
    pub struct RawBits {
        name: S<String>,
        bits: S<String>,
        doc: S<String>,
        enum_name as "enum": Option<S<String>>,
        values: Option<S<Vec<RawValue>>>,
        ty as "type": Option<S<String>>,
    }
}

schema_table! {
    /// One named value of a bit range.
    pub struct RawValue {
        name: S<String>,
        value: S<i64>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[error]]` in instruction_errors.toml.
    pub struct RawInstructionError {
        number: S<i64>,
        name: S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// The top of a layout file (`layouts/NAME.toml`), without its members.
    pub struct RawLayoutHead {
        name: S<String>,
        doc: S<String>,
        revision: S<i64>,
        size: S<i64>,
        released: Option<S<bool>> = default,
        /// The released layout this one evolved from (same revision): vmcs-gen proves the step.
        previous: Option<S<String>>,
        /// Clean-field groups (the eVMCS's `hv_clean_fields`).
        clean: Option<RawClean>,
    }
}

schema_table! {
    /// `[clean]` of a layout: the member holding the clean bits, and each group's bit.
    pub struct RawClean {
        member: S<String>,
        groups: std::collections::BTreeMap<String, S<i64>>,
    }
}

schema_table! {
    /// `[[member]]` of a layout.
    pub struct RawMember {
        name: S<String>,
        offset: S<i64>,
        ty as "type": S<String>,
        size: Option<S<i64>>,
        field: Option<S<String>>,
        doc: Option<S<String>>,
        /// Members of the previous layout this reserved space retires (keeping their bytes).
        retires: Option<Vec<S<String>>>,
        /// The clean-field group of this member ("all": every group).
        clean: Option<S<String>>,
    }
}

schema_table! {
    /// `[[predicate]]` in copysets.toml.
    pub struct RawPredicate {
        name: S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[hook]]` in copysets.toml.
    pub struct RawHook {
        name: S<String>,
        ty as "type": S<String>,
        inputs: Vec<S<String>> = default,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[set]]` in copysets.toml.
    pub struct RawSet {
        name: S<String>,
        doc: S<String>,
        from: S<String>,
        to: S<String>,
        runs: S<String>,
        dirty: Option<S<bool>>,
        /// Skip groups the source eVMCS marks clean.
        clean: Option<S<bool>>,
        shadow: Option<S<String>>,
        copy: Vec<RawCopyItem> = default,
    }
}

/// Bits named by number or by capability names (`"entry.ia32e_mode_guest"`).
#[derive(Debug)]
pub enum RawMask {
    Number(i64),
    Caps(String),
}

impl FromToml for RawMask {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, decode::Error> {
        match value.get_ref() {
            DeValue::Integer(_) => i64::from_toml(value).map(RawMask::Number),
            DeValue::String(_) => String::from_toml(value).map(RawMask::Caps),
            other => {
                Err((value.span(), format!("invalid type: {}, expected bits or capability names", other.type_str())))
            }
        }
    }
}

schema_table! {
    /// One entry of a set's `copy` list: the destination field and how it gets its value.
    pub struct RawCopyItem {
        field: S<String>,
        from: Option<S<String>>,
        value: Option<S<i64>>,
        hook: Option<S<String>>,
        mask: Option<S<RawMask>>,
        merge: Option<S<RawMask>>,
        when: Option<S<String>>,
        unless: Option<S<String>>,
        otherwise as "else": Option<S<RawTreatment>>,
    }
}

schema_table! {
    /// An `else`: where the value comes from when the condition is false, and which bits it changes.
    pub struct RawTreatment {
        from: Option<S<String>>,
        value: Option<S<i64>>,
        hook: Option<S<String>>,
        mask: Option<S<RawMask>>,
        merge: Option<S<RawMask>>,
    }
}

schema_table! {
    /// The top of a lock file (`locks/NAME.lock.toml`).
    pub struct RawLockHead {
        layout: S<String>,
        revision: S<i64>,
        size: S<i64>,
    }
}

schema_table! {
    /// `[[member]]` of a lock file: what a released revision pinned.
    pub struct RawLockedMember {
        name: S<String>,
        offset: S<i64>,
        size: S<i64>,
        ty as "type": S<String>,
    }
}

schema_table! {
    /// The head of a file that holds only arrays of tables.
    pub struct NoHead {}
}

schema_table! {
    /// `[[fact]]` in checks.toml.
    pub struct RawFact {
        name: S<String>,
        ty as "type": S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[define]]` in checks.toml.
    pub struct RawDefine {
        name: S<String>,
        params: Vec<S<String>>,
        doc: S<String>,
        expr: S<String>,
    }
}

schema_table! {
    /// `[[rule]]` in checks.toml.
    pub struct RawRule {
        name: S<String>,
        reference as "ref": S<String>,
        section: S<String>,
        outcome: S<String>,
        gate: Option<S<String>>,
        segments: Option<Vec<S<String>>>,
        check: S<String>,
        doc: S<String>,
        kvm: Option<S<String>>,
        kvm_restore: Option<S<bool>>,
    }
}
