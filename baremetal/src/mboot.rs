//! The entry of the Multiboot kernels of this package (L0 and the L1 test kernel): a Multiboot
//! header (page-aligned modules, memory information) and the 32-bit entry a loader calls in
//! protected mode with paging off (EAX = the Multiboot magic, EBX = the information structure).
//! It identity-maps the first 4 GiB with 2 MiB pages, enters long mode, zeroes BSS, switches to
//! its stack and calls the kernel's `mb_main(magic, info)`.

core::arch::global_asm!(
    r#"
    .section .multiboot, "a"
    .balign 4
    .long 0x1badb002, 3, -(0x1badb002 + 3)

    .section .text.mb_entry32, "ax"
    .code32
    .global mb_entry32
mb_entry32:
    cli
    mov edi, eax
    mov esi, ebx
"#,
    enter_long_mode_asm!("mb_pml4"),
    r#"
    .byte 0xea
    .long mb_entry64
    .word 0x08

    .code64
mb_entry64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov r12, rdi
    mov r13, rsi
    mov rdi, offset __bss_start
    mov rcx, offset __bss_end
    sub rcx, rdi
    xor eax, eax
    rep stosb
    mov rsp, offset mb_stack_top
    mov rdi, r12
    mov rsi, r13
    call mb_main
2:
    hlt
    jmp 2b

    .section .data.mb_boot, "aw"
"#,
    gdt64_asm!(),
    r#"

    .balign 4096
mb_pml4:
    .quad mb_pdpt + 3
    .fill 511, 8, 0
mb_pdpt:
    .quad mb_pd + 3
    .quad mb_pd + 0x1003
    .quad mb_pd + 0x2003
    .quad mb_pd + 0x3003
    .fill 508, 8, 0
mb_pd:
    .set i, 0
    .rept 2048
    .quad (i << 21) | 0x83
    .set i, i + 1
    .endr

    .section .bss.mb_stack, "aw", @nobits
    .balign 16
    .skip 0x10000
mb_stack_top:
"#
);
