//! The text of a lock file (`vmcs-gen lock NAME`): every member of a released layout pinned at
//! its offset, in the format `load/lock.rs` reads back.

use crate::model::{Layout, MemberType};

/// The lock file text that pins every member of `layout` as it is now.
pub fn lock_text(layout: &Layout) -> String {
    let mut s = format!(
        "# Lock of the released layout `{}`: every member pinned at its offset.\n\
         # Written by `vmcs-gen lock {}`; vmcs-gen rejects any change, move or removal of a pinned member.\n\
         # Reserved regions may later be claimed by new members.\n\
         layout = \"{}\"\nrevision = {:#010x}\nsize = {:#x}\n",
        layout.name, layout.name, layout.name, layout.revision, layout.size
    );
    let mut members: Vec<_> = layout.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    for m in members {
        let ty = if m.ty == MemberType::Reserved { "reserved" } else { m.ty.as_str() };
        s.push_str(&format!(
            "\n[[member]]\nname = \"{}\"\noffset = {}\nsize = {}\ntype = \"{}\"\n",
            m.name, m.offset, m.size, ty
        ));
    }
    s
}
