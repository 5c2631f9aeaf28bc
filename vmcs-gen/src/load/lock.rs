//! Locks of released layouts: a layout whose revision has shipped is an ABI (KVM_GET/SET_NESTED_STATE
//! carries it between hosts), so its pinned members may never change, move or disappear. New members
//! may only claim space the released revision reserved (or space past its end).

use std::ops::Range;

use super::layouts::{HeadSpans, MemberSpans};
use super::uint;
use crate::compat::{self, Change, Pinned};
use crate::diag::{Diagnostics, SourceFile};
use crate::model::{Layout, MemberType, Schema};
use crate::raw::{self, RawLockHead, RawLockedMember};
use crate::source::SchemaSources;

pub(super) struct LockedMember {
    name: String,
    offset: u32,
    size: u32,
    ty: String,
    span: Range<usize>,
}

pub(super) struct Lock {
    file: SourceFile,
    layout: String,
    layout_span: Range<usize>,
    revision: u32,
    revision_span: Range<usize>,
    size: u32,
    size_span: Range<usize>,
    members: Vec<LockedMember>,
}

pub(super) type Locks = Vec<Lock>;

pub(super) fn load_all(sources: &SchemaSources, diags: &mut Diagnostics) -> Locks {
    let mut locks = Vec::new();
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
                Some(LockedMember {
                    name: m.name.get_ref().clone(),
                    offset: offset as u32,
                    size: size as u32,
                    ty: m.ty.get_ref().clone(),
                    span: m.name.span(),
                })
            })
            .collect();
        locks.push(Lock {
            file: file.clone(),
            layout: head.layout.get_ref().clone(),
            layout_span: head.layout.span(),
            revision: uint(file, &head.revision, u32::MAX as u64, "revision", diags).unwrap_or(0) as u32,
            revision_span: head.revision.span(),
            size: uint(file, &head.size, 4096, "size", diags).unwrap_or(0) as u32,
            size_span: head.size.span(),
            members,
        });
    }
    locks
}

/// Check a released layout against its lock.
pub(super) fn check(
    file: &SourceFile,
    layout: &Layout,
    spans: &[MemberSpans],
    head: &HeadSpans,
    locks: &Locks,
    allow_missing: bool,
    diags: &mut Diagnostics,
) {
    let Some(lock) = locks.iter().find(|l| l.layout == layout.name) else {
        if allow_missing {
            return;
        }
        diags.push(
            file.error(head.name.clone(), format!("released layout `{}` has no lock", layout.name))
                .with_note(format!("record its pinned offsets with `vmcs-gen lock {}`", layout.name)),
        );
        return;
    };
    let what = format!("layout `{}` (released revision {:#x})", layout.name, lock.revision);
    let pinned_at = |span: &Range<usize>| {
        let at = lock.file.error(span.clone(), "");
        format!("pinned at {}:{}", at.path, at.line)
    };
    if layout.revision != lock.revision {
        diags.push(
            file.error(head.revision.clone(), format!("revision of {what} changed to {:#x}", layout.revision))
                .with_note(pinned_at(&lock.revision_span))
                .with_note("a released revision is an ABI; describe a new layout instead of changing this one"),
        );
    }
    if layout.size != lock.size {
        diags.push(
            file.error(
                head.size.clone(),
                format!("region size of {what} changed from {:#x} to {:#x}", lock.size, layout.size),
            )
            .with_note(pinned_at(&lock.size_span)),
        );
    }
    let pinned: Vec<Pinned> = lock
        .members
        .iter()
        .map(|m| Pinned { name: m.name.clone(), offset: m.offset, size: m.size, ty: m.ty.clone() })
        .collect();
    let removed_at = |name: &str| {
        let m = lock.members.iter().find(|m| m.name == name).expect("a removed member comes from the lock");
        (&lock.file, m.span.clone())
    };
    report(file, layout, spans, &compat::compare(&pinned, layout), &what, &removed_at, diags);
}

/// Turn the breaking changes from an older layout (or lock) into located diagnostics.
pub(super) fn report<'a>(
    file: &SourceFile,
    layout: &Layout,
    spans: &[MemberSpans],
    changes: &[Change],
    what: &str,
    removed_at: &dyn Fn(&str) -> (&'a SourceFile, Range<usize>),
    diags: &mut Diagnostics,
) {
    for c in changes {
        match c {
            Change::Added { .. } | Change::Retired { .. } => {}
            Change::Moved { old, new } => diags.push(
                file.error(
                    spans[*new].offset.clone(),
                    format!(
                        "pinned member `{}` of {what} moved from offset {:#x} to {:#x}",
                        old.name, old.offset, layout.members[*new].offset
                    ),
                )
                .with_note("released offsets may never move: saved nested state from other hosts would be misread"),
            ),
            Change::Changed { old, new } => {
                let m = &layout.members[*new];
                diags.push(file.error(
                    spans[*new].ty.clone(),
                    format!(
                        "pinned member `{}` of {what} changed from {} ({} bytes) to {} ({} bytes) at offset {:#x}",
                        old.name,
                        old.ty,
                        old.size,
                        m.ty.as_str(),
                        m.size,
                        old.offset
                    ),
                ))
            }
            Change::Removed { old } => {
                let (f, span) = removed_at(&old.name);
                diags.push(
                    f.error(
                        span,
                        format!("pinned member `{}` (offset {:#x}) of {what} was removed", old.name, old.offset),
                    )
                    .with_note("keep its bytes: reserved space may retire it with `retires = [...]`"),
                )
            }
            Change::Intrudes { new } => {
                let m = &layout.members[*new];
                diags.push(
                    file.error(
                        spans[*new].offset.clone(),
                        format!(
                            "member `{}` at {:#x}..{:#x} claims space that {what} did not reserve",
                            m.name,
                            m.offset,
                            m.end()
                        ),
                    )
                    .with_note(
                        "new members may only use reserved padding of the released revision or space past its end",
                    ),
                )
            }
        }
    }
}

/// A lock whose layout no longer exists means a released layout was deleted.
pub(super) fn check_orphans(locks: &Locks, schema: &Schema, diags: &mut Diagnostics) {
    for lock in locks {
        match schema.layout(&lock.layout) {
            None => diags.push(lock.file.error(
                lock.layout_span.clone(),
                format!("released layout `{}` (revision {:#x}) no longer exists", lock.layout, lock.revision),
            )),
            Some(l) if !l.released => diags.push(
                lock.file
                    .error(
                        lock.layout_span.clone(),
                        format!("layout `{}` has a lock but is not marked `released = true`", l.name),
                    )
                    .with_note("a released layout stays released"),
            ),
            Some(_) => {}
        }
    }
}

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
