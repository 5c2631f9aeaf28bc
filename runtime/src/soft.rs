//! The software VMCS model with hardware semantics (see its module docs once written).
