//! The vmcs12 facts KVM_SET_NESTED_STATE's rules read, taken from a layout of the model.

use vmcs_nested_state::Vmcs12Shape;

use super::{Layout, MemberType, Schema};

impl Schema {
    /// The [`Vmcs12Shape`] of a layout: its size and revision, the `hdr` member, and the members holding
    /// the primary and secondary processor-based controls and the VMCS link pointer. The one place the
    /// shape is derived: `vmcs-gen state` reads blobs with it, and the `nested_state.rs` emitter
    /// generates the runtime's `VMCS12_SHAPE` from it.
    pub fn nested_state_shape(&self, layout: &Layout) -> Result<Vmcs12Shape, String> {
        let by_name = |name: &str, ty: MemberType| match layout.members.iter().find(|m| m.name == name) {
            Some(m) if m.ty == ty => Ok(m.offset as usize),
            Some(m) => Err(format!("member `{name}` is {}, not {}", m.ty.as_str(), ty.as_str())),
            None => Err(format!("no member `{name}`")),
        };
        let by_field = |field: &str, ty: MemberType| {
            let found = layout.mapped().find(|(_, f)| self.fields[*f].name == field);
            match found {
                Some((m, _)) if m.ty == ty => Ok(m.offset as usize),
                Some((m, _)) => Err(format!("member `{}` holding {field} is {}", m.name, m.ty.as_str())),
                None => Err(format!("no member holds {field}")),
            }
        };
        let shape = (|| {
            Ok::<_, String>(Vmcs12Shape {
                struct_size: layout.used_bytes() as usize,
                revision: layout.revision,
                hdr: by_name("hdr", MemberType::U32)?,
                primary_controls: by_field("CPU_BASED_VM_EXEC_CONTROL", MemberType::U32)?,
                secondary_controls: by_field("SECONDARY_VM_EXEC_CONTROL", MemberType::U32)?,
                link_pointer: by_field("VMCS_LINK_POINTER", MemberType::U64)?,
            })
        })()
        .and_then(|s| s.validate().map(|()| s).map_err(|e| e.to_string()));
        shape.map_err(|e| format!("layout `{}` cannot be a nested-state vmcs12: {e}", layout.name))
    }
}
