//! locks/*.lock.toml: the locks of released layouts, read into the model ([`Lock`]). A layout
//! whose revision has shipped is an ABI (KVM_GET/SET_NESTED_STATE carries it between hosts), so its
//! pinned members may never change, move or disappear; the compatibility pass (`compat`) holds
//! each released layout to its lock.

use super::uint;
use crate::diag::Diagnostics;
use crate::model::{Lock, LockPin, LockPos, Pinned, Schema};
use crate::raw::{self, RawLockHead, RawLockedMember};
use crate::source::SchemaSources;

pub(super) fn load_all(sources: &SchemaSources, schema: &mut Schema, diags: &mut Diagnostics) {
    for file in sources.in_dir("locks") {
        let mut raw = raw::parse_file::<RawLockHead>(file, &["member"], diags);
        let members: Vec<RawLockedMember> = raw::entries(file, &mut raw, "member", diags);
        let Some(head) = raw.head else { continue };
        // A pinned member lies inside a region of at most 4096 bytes, so no offset arithmetic wraps.
        let members = members
            .iter()
            .filter_map(|m| {
                let offset = uint(file, &m.offset, 4095, "offset", diags)?;
                let size = uint(file, &m.size, 4096 - offset, "size", diags)?;
                let pinned = Pinned {
                    name: m.name.get_ref().clone(),
                    offset: offset as u32,
                    size: size as u32,
                    ty: m.ty.get_ref().clone(),
                };
                Some(LockPin { pinned, pos: schema.pos(file, m.name.span()) })
            })
            .collect();
        let lock = Lock {
            layout: head.layout.get_ref().clone(),
            revision: uint(file, &head.revision, u32::MAX as u64, "revision", diags).unwrap_or(0) as u32,
            size: uint(file, &head.size, 4096, "size", diags).unwrap_or(0) as u32,
            members,
            pos: LockPos {
                layout: schema.pos(file, head.layout.span()),
                revision: schema.pos(file, head.revision.span()),
                size: schema.pos(file, head.size.span()),
            },
        };
        schema.locks.push(lock);
    }
}
