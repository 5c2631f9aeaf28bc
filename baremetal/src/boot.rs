//! Boot: a 512-byte boot sector that loads the rest of the image (INT 13h AH=42h), enables A20,
//! and jumps from real mode straight to long mode with static identity page tables (1 GiB in
//! 2 MiB pages); then the 64-bit entry zeroes BSS, sets the stack and calls `kmain`.
//!
//! The same image is a Multiboot (v1) kernel: the ELF's entry point is a 32-bit entry that a
//! Multiboot loader (GRUB, or our L0 loading it as L1) calls in protected mode with paging off;
//! it takes the same path to long mode as the boot sector.

core::arch::global_asm!(
    r#"
    .section .boot, "awx"
    .code16
    .global boot_start
boot_start:
    cli
    cld
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    mov byte ptr [boot_drive], dl
    mov cx, offset __image_sectors
2:
    test cx, cx
    jz 4f
    mov ax, cx
    cmp ax, 64
    jbe 3f
    mov ax, 64
3:
    mov word ptr [dap_count], ax
    push ax
    push cx
    mov si, offset dap
    mov dl, byte ptr [boot_drive]
    mov ah, 0x42
    int 0x13
    jc disk_error
    pop cx
    pop ax
    sub cx, ax
    add word ptr [dap_lba], ax
    shl ax, 5
    add word ptr [dap_seg], ax
    jmp 2b
4:
    in al, 0x92
    or al, 2
    and al, 0xfe
    out 0x92, al
"#,
    enter_long_mode_asm!("boot_pml4"),
    r#"
    .byte 0x66, 0xea
    .long long_entry
    .word 0x08
disk_error:
    mov dx, 0xe9
    mov al, 'D'
    out dx, al
    hlt
    jmp disk_error

    .balign 4
dap:
    .byte 16, 0
dap_count:
    .word 0
dap_off:
    .word 0
dap_seg:
    .word 0x07e0
dap_lba:
    .quad 1
boot_drive:
    .byte 0
"#,
    gdt64_asm!(),
    r#"
    .org 510
    .byte 0x55, 0xaa

    .section .multiboot, "a"
    .balign 4
    .long 0x1badb002, 0, -0x1badb002

    .section .text.multiboot_entry, "ax"
    .code32
    .global multiboot_entry
multiboot_entry:
    cli
    mov dword ptr [multiboot_booted], 1
"#,
    enter_long_mode_asm!("boot_pml4"),
    r#"
    .byte 0xea
    .long long_entry
    .word 0x08

    .section .text.long_entry, "ax"
    .code64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov rdi, offset __bss_start
    mov rcx, offset __bss_end
    sub rcx, rdi
    xor eax, eax
    rep stosb
    mov rsp, offset __stack_top
    call kmain
5:
    hlt
    jmp 5b

    .section .data.boot, "aw"

    // 1 when a Multiboot loader (GRUB, or our L0 running this kernel as L1) started the kernel.
    .balign 4
    .global multiboot_booted
multiboot_booted:
    .long 0

    .balign 4096
boot_pml4:
    .quad boot_pdpt + 3
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 3
    .fill 511, 8, 0
boot_pd:
    .set i, 0
    .rept 512
    .quad (i << 21) | 0x83
    .set i, i + 1
    .endr

    .section .text.guest, "ax"
    .global guest_entry
guest_entry:
    vmcall
    // Each intercepted (exits.rs) and skipped by the host.
    out 0x80, al
    mov edx, 0x3f8
    in ax, dx
    mov cr3, rbx
    hlt
    jmp guest_entry

"#
);
