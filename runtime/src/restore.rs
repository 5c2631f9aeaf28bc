//! Restoring IA32_VMX_* capability MSRs: the audit KVM applies to userspace values.
