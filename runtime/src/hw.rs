//! The real VMCS: VMX instructions through inline assembly (x86-64 only).
