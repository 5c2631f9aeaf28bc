//! Exit handling as an L0 does it: the guest runs I/O and control-register instructions the
//! controls make exit, and each exit is decoded through the generated `vmcs::exit` types and
//! compared with the qualification worked out by hand from the SDM's tables.

use vmcs::exit::{CrAccessType, ExitReason, IoSize, Qualification};
use vmcs::fields;
use vmcs::hw::{CurrentVmcs, GuestRegisters};
use vmcs::{VmcsRead, VmcsWrite};

use crate::rt::check;

/// What the guest's next exit must be, and the decoded qualification's fields.
struct Expected {
    insn: &'static str,
    reason: ExitReason,
    qualification: u64,
    decoded: fn(Qualification) -> bool,
}

/// After `boot.rs`'s VMCALL: OUT 0x80, AL; IN AX, DX (DX = 0x3f8); MOV CR3, RBX.
const EXITS: [Expected; 3] = [
    Expected {
        insn: "out 0x80, al",
        reason: ExitReason::IoInstruction,
        qualification: 0x0080_0040,
        decoded: |q| {
            matches!(q, Qualification::IoInstruction(io)
                if io.port() == 0x80 && io.size() == Some(IoSize::Byte) && !io.input() && io.immediate_operand())
        },
    },
    Expected {
        insn: "in ax, dx",
        reason: ExitReason::IoInstruction,
        qualification: 0x03f8_0009,
        decoded: |q| {
            matches!(q, Qualification::IoInstruction(io)
                if io.port() == 0x3f8 && io.size() == Some(IoSize::Word) && io.input() && !io.immediate_operand())
        },
    },
    Expected {
        insn: "mov cr3, rbx",
        reason: ExitReason::CrAccess,
        qualification: 0x303,
        decoded: |q| {
            matches!(q, Qualification::CrAccess(cr)
                if cr.cr() == 3 && cr.access_type() == CrAccessType::MovToCr && cr.gpr() == 3)
        },
    },
];

/// Resume the guest through every expected exit, skipping each intercepted instruction by its
/// VM-exit instruction length. Returns the guest RIP after the last one (the HLT), or 0.
pub fn io_and_cr_exits(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters) -> u64 {
    let mut next = 0;
    for e in &EXITS {
        // SAFETY: the host state describes this context (set up by the caller's launch).
        let r = unsafe { v.resume(regs) };
        let (q, rip, len) =
            (v.read(fields::EXIT_QUALIFICATION), v.read(fields::GUEST_RIP), v.read(fields::VM_EXIT_INSTRUCTION_LEN));
        let (Ok(exit), Ok(q), Ok(rip), Ok(len)) = (r, q, rip, len) else {
            check(false, format_args!("{}: exit {r:?}, qualification {q:x?}, RIP {rip:x?}, length {len:?}", e.insn));
            return 0;
        };
        let reason = exit.basic();
        check(
            reason == Some(e.reason)
                && q == e.qualification
                && reason.is_some_and(|r| (e.decoded)(Qualification::decode(r, q))),
            format_args!(
                "{}: exit {exit:?}, qualification {q:#x} = {:?} (want {} {:#x})",
                e.insn,
                reason.map(|r| Qualification::decode(r, q)),
                e.reason,
                e.qualification
            ),
        );
        next = rip + len as u64;
        if v.write(fields::GUEST_RIP, next).is_err() {
            check(false, format_args!("{}: cannot advance the guest RIP", e.insn));
        }
    }
    next
}
