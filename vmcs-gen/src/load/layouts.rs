//! layouts/*.toml: software VMCS layouts (vmcs12) with pinned member offsets.

use std::collections::{HashMap, HashSet};

use super::{duplicate, uint};
use crate::diag::{Diagnostics, SourceFile};
use crate::model::{CleanFields, CleanGroup, Layout, LayoutPos, Member, MemberPos, MemberType, Schema};
use crate::raw::{self, RawLayoutHead, RawMember, S};

/// The largest VMCS region IA32_VMX_BASIC bits 44:32 may report (SDM Vol. 3D A.1).
const MAX_REGION: u64 = 4096;

/// Load one layout file into `schema.layouts`, checking it on its own (placement, mapped fields,
/// clean groups); how it relates to locks and other layouts is the compatibility pass's.
pub(super) fn load(
    file: &SourceFile,
    rejected: Option<&HashSet<String>>,
    schema: &mut Schema,
    diags: &mut Diagnostics,
) {
    let mut raw = raw::parse_file::<RawLayoutHead>(file, &["member"], diags);
    let before_entries = diags.len();
    let members: Vec<RawMember> = raw::entries(file, &mut raw, "member", diags);
    let entries_ok = diags.len() == before_entries;
    let Some(head) = raw.head else { return };
    let revision = uint(file, &head.revision, u32::MAX as u64, "revision", diags).unwrap_or(0) as u32;
    if revision >> 31 != 0 {
        diags.push(file.error(head.revision.span(), format!("revision {revision:#x} sets bit 31")).with_note(
            "a VMCS revision identifier is IA32_VMX_BASIC bits 30:0; bit 31 of the region marks a shadow VMCS",
        ));
    }
    let size = uint(file, &head.size, u32::MAX as u64, "region size", diags).unwrap_or(0) as u32;
    if !(1..=MAX_REGION).contains(&(size as u64)) {
        diags.push(
            file.error(head.size.span(), format!("region size {size:#x} is outside 1..=0x1000"))
                .with_note("IA32_VMX_BASIC bits 44:32 report a VMCS region of at most 4096 bytes"),
        );
    }
    if schema.layout(head.name.get_ref()).is_some() {
        diags.push(file.error(head.name.span(), format!("duplicate layout `{}`", head.name.get_ref())));
        return;
    }
    let pos = LayoutPos {
        name: schema.pos(file, head.name.span()),
        revision: schema.pos(file, head.revision.span()),
        size: schema.pos(file, head.size.span()),
        previous: head.previous.as_ref().map(|p| schema.pos(file, p.span())),
    };
    let mut layout = Layout {
        name: head.name.get_ref().clone(),
        doc: head.doc.get_ref().clone(),
        revision,
        size,
        released: head.released.as_ref().is_some_and(|r| *r.get_ref()),
        previous: head.previous.as_ref().map(|p| p.get_ref().clone()),
        clean: None,
        members: Vec::new(),
        complete: false,
        pos,
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
        if offset + size as u64 > size_limit(&layout) {
            diags.push(file.error(
                m.offset.span(),
                format!(
                    "member `{}` ({offset:#x}..{:#x}) leaves the {:#x}-byte region of layout `{}`",
                    m.name.get_ref(),
                    offset + size as u64,
                    layout.size,
                    layout.name
                ),
            ));
            continue;
        }
        let pos = MemberPos {
            name: schema.pos(file, m.name.span()),
            offset: schema.pos(file, m.offset.span()),
            ty: schema.pos(file, m.ty.span()),
            retires: m.retires.iter().flatten().map(|r| schema.pos(file, r.span())).collect(),
        };
        layout.members.push(Member {
            name: m.name.get_ref().clone(),
            offset: offset as u32,
            size,
            ty,
            field,
            doc: m.doc.as_ref().map(|d| d.get_ref().clone()),
            retires: m.retires.iter().flatten().map(|r| r.get_ref().clone()).collect(),
            clean: m.clean.as_ref().and_then(|c| clean_group(file, &layout, c, diags)),
            pos,
        });
    }
    // A member that did not load leaves a gap of its own: only a complete layout is checked for gaps.
    layout.complete = entries_ok && layout.members.len() == members.len();
    check_placement(file, &layout, diags);
    check_clean_member(file, &layout, &head, diags);
    schema.layouts.push(layout);
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

/// The bytes a member may reach: the region, or at most 4096 when the declared size is wrong
/// (that error is reported at the size).
fn size_limit(layout: &Layout) -> u64 {
    if (1..=MAX_REGION).contains(&(layout.size as u64)) { layout.size as u64 } else { MAX_REGION }
}

/// Members (already inside the region) must not overlap, and must tile the bytes they use: a gap is
/// declared as reserved space, so the generated struct has exactly the declared offsets.
fn check_placement(file: &SourceFile, layout: &Layout, diags: &mut Diagnostics) {
    let mut order: Vec<usize> = (0..layout.members.len()).collect();
    order.sort_by_key(|&i| (layout.members[i].offset, i));
    let mut covered = 0;
    let mut last: Option<&Member> = None;
    for &i in &order {
        let m = &layout.members[i];
        match last {
            Some(a) if m.offset < a.end() => diags.push(file.error(
                m.pos.offset.span.clone(),
                format!(
                    "member `{}` at {:#x}..{:#x} overlaps member `{}` at {:#x}..{:#x}",
                    m.name,
                    m.offset,
                    m.end(),
                    a.name,
                    a.offset,
                    a.end()
                ),
            )),
            _ if layout.complete && m.offset > covered => {
                let after = last.map_or("the start of the layout".to_string(), |a| format!("member `{}`", a.name));
                diags.push(
                    file.error(
                        m.pos.offset.span.clone(),
                        format!(
                            "bytes {covered:#x}..{:#x} between {after} and member `{}` belong to no member",
                            m.offset, m.name
                        ),
                    )
                    .with_note(format!(
                        "declare them: [[member]] with offset = {covered}, type = \"reserved\", size = {}",
                        m.offset - covered
                    )),
                )
            }
            _ => {}
        }
        if last.is_none_or(|a| m.end() > a.end()) {
            last = Some(m);
        }
        covered = covered.max(m.end());
    }
}
