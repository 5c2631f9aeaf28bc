//! The compatibility pass over the loaded model: breaking changes reported where they are written.

use super::{Change, Pinned, compare};
use crate::diag::Diagnostics;
use crate::model::{Layout, Lock, Pos, Schema};

/// Each released layout against its lock (a released layout without one is an error unless
/// `allow_missing`, for `vmcs-gen lock`). Only complete layouts: a member that failed to load
/// would read as removed.
pub(crate) fn check_locks(schema: &Schema, allow_missing: bool, diags: &mut Diagnostics) {
    for layout in schema.layouts.iter().filter(|l| l.released && l.complete) {
        match schema.locks.iter().find(|l| l.layout == layout.name) {
            Some(lock) => check_lock(schema, layout, lock, diags),
            None if allow_missing => {}
            None => diags.push(
                schema
                    .error_at(&layout.pos.name, format!("released layout `{}` has no lock", layout.name))
                    .with_note(format!("record its pinned offsets with `vmcs-gen lock {}`", layout.name)),
            ),
        }
    }
}

fn check_lock(schema: &Schema, layout: &Layout, lock: &Lock, diags: &mut Diagnostics) {
    let what = format!("layout `{}` (released revision {:#x})", layout.name, lock.revision);
    let pinned_at = |pos: &Pos| {
        let at = schema.error_at(pos, "");
        format!("pinned at {}:{}", at.path, at.line)
    };
    if layout.revision != lock.revision {
        diags.push(
            schema
                .error_at(&layout.pos.revision, format!("revision of {what} changed to {:#x}", layout.revision))
                .with_note(pinned_at(&lock.pos.revision))
                .with_note("a released revision is an ABI; describe a new layout instead of changing this one"),
        );
    }
    if layout.size != lock.size {
        diags.push(
            schema
                .error_at(
                    &layout.pos.size,
                    format!("region size of {what} changed from {:#x} to {:#x}", lock.size, layout.size),
                )
                .with_note(pinned_at(&lock.pos.size)),
        );
    }
    let pinned: Vec<Pinned> = lock.members.iter().map(|m| m.pinned.clone()).collect();
    let removed_at = |name: &str| {
        let pin = lock.members.iter().find(|m| m.pinned.name == name).expect("a removed member comes from the lock");
        pin.pos.clone()
    };
    report(schema, layout, &compare(&pinned, layout), &what, &removed_at, diags);
}

/// Prove each `previous -> layout` step compatible: same revision and size, every pinned member of
/// the previous layout kept or retired, new members only in its reserved space.
pub(crate) fn check_steps(schema: &Schema, diags: &mut Diagnostics) {
    for layout in &schema.layouts {
        let (Some(prev_name), Some(at)) = (&layout.previous, &layout.pos.previous) else { continue };
        let Some(prev) = schema.layout(prev_name) else {
            diags.push(schema.error_at(at, format!("unknown previous layout `{prev_name}`")));
            continue;
        };
        let what = format!("previous layout `{}`", prev.name);
        let line = schema.error_at(at, "").line;
        let steps = [
            ("revision", layout.revision, prev.revision, &layout.pos.revision),
            ("region size", layout.size, prev.size, &layout.pos.size),
        ];
        let mut kept = true;
        for (key, ours, theirs, pos) in steps.into_iter().filter(|(_, a, b, _)| a != b) {
            diags.push(
                schema
                    .error_at(pos, format!("{key} {ours:#x} differs from {what}'s {theirs:#x}; a step keeps it"))
                    .with_note(format!("`previous = \"{}\"` at line {line}", prev.name)),
            );
            kept = false;
        }
        if !kept {
            continue;
        }
        let pinned = Pinned::of_layout(prev);
        for m in &layout.members {
            for (r, pos) in m.retires.iter().zip(&m.pos.retires) {
                if !pinned.iter().any(|p| &p.name == r) {
                    diags.push(
                        schema
                            .error_at(pos, format!("`{}` retires `{r}`, which {what} does not have", m.name))
                            .with_note(format!("`{}` pins: {}", prev.name, nearest(&pinned, r))),
                    );
                }
            }
        }
        let removed_at = |_: &str| at.clone();
        report(schema, layout, &compare(&pinned, layout), &what, &removed_at, diags);
    }
}

/// A lock whose layout no longer exists means a released layout was deleted.
pub(crate) fn check_orphans(schema: &Schema, diags: &mut Diagnostics) {
    for lock in &schema.locks {
        match schema.layout(&lock.layout) {
            None => diags.push(schema.error_at(
                &lock.pos.layout,
                format!("released layout `{}` (revision {:#x}) no longer exists", lock.layout, lock.revision),
            )),
            Some(l) if !l.released => diags.push(
                schema
                    .error_at(
                        &lock.pos.layout,
                        format!("layout `{}` has a lock but is not marked `released = true`", l.name),
                    )
                    .with_note("a released layout stays released"),
            ),
            Some(_) => {}
        }
    }
}

/// Turn the breaking changes from an older layout (or lock) into located diagnostics; a removed
/// member is reported where `removed_at` says (the lock's pin, or the step's `previous`).
fn report(
    schema: &Schema,
    layout: &Layout,
    changes: &[Change],
    what: &str,
    removed_at: &dyn Fn(&str) -> Pos,
    diags: &mut Diagnostics,
) {
    for c in changes {
        match c {
            Change::Added { .. } | Change::Retired { .. } => {}
            Change::Moved { old, new } => {
                let m = &layout.members[*new];
                diags.push(
                    schema
                        .error_at(
                            &m.pos.offset,
                            format!(
                                "pinned member `{}` of {what} moved from offset {:#x} to {:#x}",
                                old.name, old.offset, m.offset
                            ),
                        )
                        .with_note(
                            "released offsets may never move: saved nested state from other hosts would be misread",
                        ),
                )
            }
            Change::Changed { old, new } => {
                let m = &layout.members[*new];
                diags.push(schema.error_at(
                    &m.pos.ty,
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
            Change::Removed { old } => diags.push(
                schema
                    .error_at(
                        &removed_at(&old.name),
                        format!("pinned member `{}` (offset {:#x}) of {what} was removed", old.name, old.offset),
                    )
                    .with_note("keep its bytes: reserved space may retire it with `retires = [...]`"),
            ),
            Change::Intrudes { new } => {
                let m = &layout.members[*new];
                diags.push(
                    schema
                        .error_at(
                            &m.pos.offset,
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

/// The pinned names closest to `name` (a typo's likely meaning), e.g. "`cr3_target_value0`".
fn nearest(pinned: &[Pinned], name: &str) -> String {
    let common = |a: &str| a.bytes().zip(name.bytes()).take_while(|(x, y)| x == y).count();
    let best = pinned.iter().map(|p| common(&p.name)).max().unwrap_or(0);
    let close: Vec<String> = pinned
        .iter()
        .filter(|p| best > 0 && common(&p.name) == best)
        .take(4)
        .map(|p| format!("`{}`", p.name))
        .collect();
    if close.is_empty() { "no member of that name".to_string() } else { close.join(", ") }
}
