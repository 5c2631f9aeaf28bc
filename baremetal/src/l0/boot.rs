//! L0's entry: a Multiboot header (page-aligned modules, memory information) and the 32-bit entry
//! GRUB calls in protected mode with paging off (EAX = the Multiboot magic, EBX = the information
//! structure). It identity-maps the first 4 GiB with 2 MiB pages, enters long mode, zeroes BSS,
//! switches to its stack and calls `l0_main(magic, info)`.

core::arch::global_asm!(
    r#"
    .section .multiboot, "a"
    .balign 4
    .long 0x1badb002, 3, -(0x1badb002 + 3)

    .section .text.l0_entry32, "ax"
    .code32
    .global l0_entry32
l0_entry32:
    cli
    mov edi, eax
    mov esi, ebx
    mov eax, 0x620
    mov cr4, eax
    mov eax, offset l0_pml4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x100
    wrmsr
    lgdt [l0_gdt_ptr]
    mov eax, cr0
    and eax, 0xfffffffb
    or eax, 0x80000023
    mov cr0, eax
    .byte 0xea
    .long l0_entry64
    .word 0x08

    .code64
l0_entry64:
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
    mov rsp, offset l0_stack_top
    mov rdi, r12
    mov rsi, r13
    call l0_main
2:
    hlt
    jmp 2b

    .section .data.l0_boot, "aw"
    .balign 8
    .global gdt64
gdt64:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0
    .quad 0
gdt64_end:
    .balign 4
l0_gdt_ptr:
    .word gdt64_end - gdt64 - 1
    .long gdt64

    .balign 4096
l0_pml4:
    .quad l0_pdpt + 3
    .fill 511, 8, 0
l0_pdpt:
    .quad l0_pd + 3
    .quad l0_pd + 0x1003
    .quad l0_pd + 0x2003
    .quad l0_pd + 0x3003
    .fill 508, 8, 0
l0_pd:
    .set i, 0
    .rept 2048
    .quad (i << 21) | 0x83
    .set i, i + 1
    .endr

    .section .bss.l0_stack, "aw", @nobits
    .balign 16
    .skip 0x10000
l0_stack_top:
"#
);
