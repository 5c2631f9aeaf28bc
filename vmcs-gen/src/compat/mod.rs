//! Layout compatibility: how a newer layout relates to an older one it must stay readable by.
//!
//! A released layout is an ABI. Going from `old` to `new`, a pinned member must keep its name,
//! offset, size and type; it may only disappear into reserved space that declares it `retires`
//! (its bytes stay); a new member may only take reserved space of `old` or space past its end.
//!
//! [`compare`] lists the changes (`vmcs-gen diff` prints them); the pass in `check` runs over the
//! loaded model and reports the breaking ones at their source: each released layout against its
//! lock, each `previous` step, and locks whose layout is gone.

mod check;
pub(crate) use check::{check_locks, check_orphans, check_steps};

pub use crate::model::Pinned;
use crate::model::{Layout, MemberType};

/// One difference between two layouts. `old` is the older layout's member as pinned; `new` is an
/// index into the newer layout's [`members`](Layout::members).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new member inside reserved space of the old layout (`within`) or past its end (None).
    Added {
        /// The new member.
        new: usize,
        /// The old reserved member whose bytes it takes, or None past the old layout's end.
        within: Option<String>,
    },
    /// A pinned member now covered by reserved space that retires it.
    Retired {
        /// The member that is gone.
        old: Pinned,
        /// The reserved member of the new layout that names it in `retires`.
        by: String,
    },
    /// Breaking: a pinned member moved.
    Moved {
        /// The member where it was.
        old: Pinned,
        /// The same name at its new offset.
        new: usize,
    },
    /// Breaking: a pinned member changed size or type in place.
    Changed {
        /// The member as it was.
        old: Pinned,
        /// The same name and offset with its new size or type.
        new: usize,
    },
    /// Breaking: a pinned member is gone without being retired.
    Removed {
        /// The member that is gone.
        old: Pinned,
    },
    /// Breaking: a new member takes space the old layout did not reserve.
    Intrudes {
        /// The new member.
        new: usize,
    },
}

impl Change {
    /// Whether a reader of the old layout would misread the new one: anything but
    /// [`Added`](Change::Added) and [`Retired`](Change::Retired).
    pub fn is_breaking(&self) -> bool {
        !matches!(self, Change::Added { .. } | Change::Retired { .. })
    }
}

/// Every change from `old` to `new`, in order of offset.
pub fn compare(old: &[Pinned], new: &Layout) -> Vec<Change> {
    let mut changes = Vec::new();
    for o in old.iter().filter(|o| !o.reserved()) {
        match new.members.iter().position(|m| m.name == o.name) {
            Some(i) => {
                let m = &new.members[i];
                if m.offset != o.offset {
                    changes.push(Change::Moved { old: o.clone(), new: i });
                } else if m.size != o.size || m.ty.as_str() != o.ty {
                    changes.push(Change::Changed { old: o.clone(), new: i });
                }
            }
            None => {
                let by = new.members.iter().find(|m| {
                    m.ty == MemberType::Reserved
                        && m.retires.contains(&o.name)
                        && m.offset <= o.offset
                        && o.end() <= m.end()
                });
                match by {
                    Some(m) => changes.push(Change::Retired { old: o.clone(), by: m.name.clone() }),
                    None => changes.push(Change::Removed { old: o.clone() }),
                }
            }
        }
    }
    let old_end = old.iter().map(Pinned::end).max().unwrap_or(0);
    for (i, m) in new.members.iter().enumerate() {
        if old.iter().any(|o| !o.reserved() && o.name == m.name) {
            continue;
        }
        let within = old.iter().find(|o| o.reserved() && o.offset <= m.offset && m.end() <= o.end());
        let retiring = m.ty == MemberType::Reserved && !m.retires.is_empty();
        match within {
            // Reserved space that stays reserved, or shrinks, is not worth listing.
            Some(o) if m.ty != MemberType::Reserved => {
                changes.push(Change::Added { new: i, within: Some(o.name.clone()) })
            }
            Some(_) => {}
            None if m.offset >= old_end => changes.push(Change::Added { new: i, within: None }),
            // Retiring space covers the members it retires: checked above.
            None if retiring => {}
            None => changes.push(Change::Intrudes { new: i }),
        }
    }
    changes.sort_by_key(|c| match c {
        Change::Added { new: i, .. } | Change::Intrudes { new: i } => new.members[*i].offset,
        Change::Moved { old, .. }
        | Change::Changed { old, .. }
        | Change::Removed { old }
        | Change::Retired { old, .. } => old.offset,
    });
    changes
}
