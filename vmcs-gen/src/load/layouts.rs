//! layouts/*.toml: software VMCS layouts (vmcs12) with pinned member offsets.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::lock::{self, Locks};
use super::{duplicate, uint};
use crate::compat::{self, Pinned};
use crate::diag::{Diagnostics, SourceFile};
use crate::model::{CleanFields, CleanGroup, Layout, Member, MemberType, Schema};
use crate::raw::{self, RawLayoutHead, RawMember, S};

/// Where a member's parts sit in its file, for located errors (the lock check uses them too).
pub(super) struct MemberSpans {
    pub name: Range<usize>,
    pub offset: Range<usize>,
}

pub(super) fn load(
    file: &SourceFile,
    locks: &Locks,
    options: super::LoadOptions,
    rejected: Option<&HashSet<String>>,
    schema: &mut Schema,
    diags: &mut Diagnostics,
) -> Option<Loaded> {
    let mut raw = raw::parse_file::<RawLayoutHead>(file, &["member"], diags);
    let members: Vec<RawMember> = raw::entries(file, &mut raw, "member", diags);
    let head = raw.head?;
    let revision = uint(file, &head.revision, u32::MAX as u64, "revision", diags).unwrap_or(0) as u32;
    let size = uint(file, &head.size, u32::MAX as u64, "region size", diags).unwrap_or(0) as u32;
    if schema.layout(head.name.get_ref()).is_some() {
        diags.push(file.error(head.name.span(), format!("duplicate layout `{}`", head.name.get_ref())));
        return None;
    }
    let mut layout = Layout {
        name: head.name.get_ref().clone(),
        doc: head.doc.get_ref().clone(),
        revision,
        size,
        released: head.released.as_ref().is_some_and(|r| *r.get_ref()),
        previous: head.previous.as_ref().map(|p| p.get_ref().clone()),
        clean: None,
        members: Vec::new(),
    };
    if let Some(c) = &head.clean {
        let mut groups: Vec<(String, u32)> = Vec::new();
        for (name, bit) in &c.groups {
            let Some(b) = uint(file, bit, 31, "clean-field bit", diags) else { continue };
            if let Some((other, _)) = groups.iter().find(|(_, x)| *x == b as u32) {
                diags.push(file.error(bit.span(), format!("clean-field bit {b} of `{name}` is also `{other}`'s")));
            }
            groups.push((name.clone(), b as u32));
        }
        groups.sort_by_key(|(_, b)| *b);
        layout.clean = Some(CleanFields { member: c.member.get_ref().clone(), groups });
    }
    let mut spans = Vec::new();
    let mut names = HashMap::new();
    let mut mapped: HashMap<usize, String> = HashMap::new();
    for m in &members {
        duplicate(file, &mut names, &m.name, "member", diags);
        let Some(ty) = MemberType::parse(m.ty.get_ref()) else {
            diags.push(file.error(
                m.ty.span(),
                format!("unknown member type `{}`: expected u16, u32, u64, natural or reserved", m.ty.get_ref()),
            ));
            continue;
        };
        let Some(offset) = uint(file, &m.offset, u32::MAX as u64, "offset", diags) else { continue };
        let declared = m.size.as_ref().and_then(|s| uint(file, s, u32::MAX as u64, "size", diags));
        let size = match (ty.scalar_size(), declared) {
            (Some(s), None) => s,
            (Some(s), Some(d)) if d as u32 == s => s,
            (Some(s), Some(d)) => {
                let span = m.size.as_ref().unwrap().span();
                diags.push(file.error(span, format!("size {d} disagrees with type {} ({s} bytes)", ty.as_str())));
                s
            }
            (None, Some(d)) if d > 0 => d as u32,
            (None, _) => {
                diags.push(file.error(m.ty.span(), "reserved space needs a positive `size`"));
                continue;
            }
        };
        let field = m.field.as_ref().and_then(|f| {
            let Some(id) = schema.fields.iter().position(|x| &x.name == f.get_ref()) else {
                // Without fields.toml, or for a field already reported, a second error adds nothing.
                if rejected.is_some_and(|r| !r.contains(f.get_ref())) {
                    diags.push(file.error(f.span(), format!("member maps unknown field `{}`", f.get_ref())));
                }
                return None;
            };
            if let Some(prev) = mapped.insert(id, m.name.get_ref().clone()) {
                diags.push(
                    file.error(f.span(), format!("field `{}` is mapped twice (also by member `{prev}`)", f.get_ref())),
                );
            }
            let want = MemberType::for_width(schema.fields[id].width);
            if ty != want {
                diags.push(
                    file.error(
                        m.ty.span(),
                        format!("member type {} does not match field `{}`", ty.as_str(), f.get_ref()),
                    )
                    .with_note(format!(
                        "{} is a {} field, stored as {}",
                        f.get_ref(),
                        schema.fields[id].width.describe(),
                        want.as_str()
                    )),
                );
            }
            Some(id)
        });
        if field.is_none() && m.field.is_none() && ty != MemberType::Reserved && m.doc.is_none() {
            diags.push(file.error(m.name.span(), "an unmapped member needs a `doc` saying what it holds"));
        }
        if let Some(r) = m.retires.as_ref().and_then(|r| r.first()).filter(|_| ty != MemberType::Reserved) {
            diags.push(file.error(r.span(), "only reserved space can retire members"));
        }
        spans.push(MemberSpans { name: m.name.span(), offset: m.offset.span() });
        layout.members.push(Member {
            name: m.name.get_ref().clone(),
            offset: offset as u32,
            size,
            ty,
            field,
            doc: m.doc.as_ref().map(|d| d.get_ref().clone()),
            retires: m.retires.iter().flatten().map(|r| r.get_ref().clone()).collect(),
            clean: m.clean.as_ref().and_then(|c| clean_group(file, &layout, c, diags)),
        });
    }
    check_placement(file, &layout, &spans, diags);
    check_clean_member(file, &layout, &head, diags);
    if layout.released && !options.skip_compat {
        lock::check(file, &layout, &spans, head.name.span(), locks, options.allow_missing_lock, diags);
    }
    schema.layouts.push(layout);
    Some(Loaded { file: file.clone(), spans, previous: head.previous.as_ref().map(|p| p.span()) })
}

/// What the step check needs of a loaded layout file.
pub(super) struct Loaded {
    file: SourceFile,
    spans: Vec<MemberSpans>,
    previous: Option<Range<usize>>,
}

/// Prove each `previous -> layout` step compatible: same revision and size, every pinned member of
/// the previous layout kept or retired, new members only in its reserved space.
pub(super) fn check_steps(schema: &Schema, loaded: &[Loaded], diags: &mut Diagnostics) {
    for (layout, l) in schema.layouts.iter().zip(loaded) {
        let (Some(prev_name), Some(at)) = (&layout.previous, &l.previous) else { continue };
        let Some(prev) = schema.layout(prev_name) else {
            diags.push(l.file.error(at.clone(), format!("unknown previous layout `{prev_name}`")));
            continue;
        };
        let what = format!("previous layout `{}`", prev.name);
        if prev.revision != layout.revision || prev.size != layout.size {
            diags.push(l.file.error(
                at.clone(),
                format!("{what} has revision {:#x} and size {:#x}; a step keeps both", prev.revision, prev.size),
            ));
            continue;
        }
        let pinned = Pinned::of_layout(prev);
        for m in &layout.members {
            for r in &m.retires {
                if !pinned.iter().any(|p| &p.name == r) {
                    let i = layout.members.iter().position(|x| x.name == m.name).unwrap();
                    diags.push(l.file.error(
                        l.spans[i].name.clone(),
                        format!("`{}` retires `{r}`, which {what} does not have", m.name),
                    ));
                }
            }
        }
        let removed_at = |_: &str| (&l.file, at.clone());
        lock::report(&l.file, layout, &l.spans, &compat::compare(&pinned, layout), &what, &removed_at, diags);
    }
}

/// Resolve a member's `clean = "group"` against the layout's `[clean]` groups.
fn clean_group(file: &SourceFile, layout: &Layout, name: &S<String>, diags: &mut Diagnostics) -> Option<CleanGroup> {
    let Some(clean) = &layout.clean else {
        diags.push(file.error(name.span(), "`clean` needs a `[clean]` table in the layout"));
        return None;
    };
    if name.get_ref() == "all" {
        return Some(CleanGroup::All);
    }
    match clean.groups.iter().find(|(g, _)| g == name.get_ref()) {
        Some((_, bit)) => Some(CleanGroup::Bit(*bit)),
        None => {
            diags.push(file.error(name.span(), format!("unknown clean-field group `{}`", name.get_ref())));
            None
        }
    }
}

/// The `[clean]` member must be a u32 of the layout.
fn check_clean_member(file: &SourceFile, layout: &Layout, head: &RawLayoutHead, diags: &mut Diagnostics) {
    let Some(c) = &head.clean else { return };
    if !layout.members.iter().any(|m| &m.name == c.member.get_ref() && m.ty == MemberType::U32 && m.field.is_none()) {
        diags.push(
            file.error(
                c.member.span(),
                format!("`{}` is not an unmapped u32 member of the layout", c.member.get_ref()),
            ),
        );
    }
}

/// Members must stay inside the region and must not overlap.
fn check_placement(file: &SourceFile, layout: &Layout, spans: &[MemberSpans], diags: &mut Diagnostics) {
    let mut order: Vec<usize> = (0..layout.members.len()).collect();
    order.sort_by_key(|&i| (layout.members[i].offset, i));
    for (i, m) in layout.members.iter().enumerate() {
        if m.end() > layout.size {
            diags.push(file.error(
                spans[i].offset.clone(),
                format!(
                    "member `{}` ({:#x}..{:#x}) leaves the {:#x}-byte region of layout `{}`",
                    m.name,
                    m.offset,
                    m.end(),
                    layout.size,
                    layout.name
                ),
            ));
        }
    }
    for pair in order.windows(2) {
        let (a, b) = (&layout.members[pair[0]], &layout.members[pair[1]]);
        if b.offset < a.end() {
            diags.push(file.error(
                spans[pair[1]].offset.clone(),
                format!(
                    "member `{}` at {:#x}..{:#x} overlaps member `{}` at {:#x}..{:#x}",
                    b.name,
                    b.offset,
                    b.end(),
                    a.name,
                    a.offset,
                    a.end()
                ),
            ));
        }
    }
}
