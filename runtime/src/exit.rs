//! VM exits, generated from `schema/exits.toml`: the basic exit reasons ([`ExitReason`]), the
//! exit-reason field ([`VmExitReason`]: basic reason, entry failure, ...), interruption
//! information ([`InterruptionInfo`]) and the exit qualifications hypervisors decode most, each a
//! typed view with getters and `with_` setters (so an L0 can also build what it reflects to L1).
//!
//! ```
//! use vmcs::exit::{CrAccessType, ExitReason, Qualification, VmExitReason};
//!
//! // MOV CR3, RAX (RAX = register 0) in the guest, with CR3-load exiting.
//! let reason = VmExitReason::from_bits(28);
//! assert_eq!(reason.basic(), Some(ExitReason::CrAccess));
//! assert!(!reason.entry_failure());
//! match Qualification::decode(ExitReason::CrAccess, 0x3) {
//!     Qualification::CrAccess(q) => {
//!         assert_eq!((q.cr(), q.access_type(), q.gpr()), (3, CrAccessType::MovToCr, 0));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

pub use crate::generated::exits::*;
