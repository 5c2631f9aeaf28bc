//! The way to long mode the kernels' entries share (the boot sector's from real mode, the
//! Multiboot entries' from protected mode with paging off), as assembly text for `global_asm!`.

/// With interrupts off: CR4 = PAE | OSFXSR | OSXMMEXCPT, CR3 = the PML4 at label `$pml4`,
/// EFER.LME, the GDT of [`gdt64_asm`], then CR0.PG | NE | MP | PE with EM
/// clear. A far jump to a 64-bit code segment (selector 0x08 of [`gdt64_asm`]) must follow.
macro_rules! enter_long_mode_asm {
    ($pml4:literal) => {
        concat!(
            "mov eax, 0x620\n",
            "mov cr4, eax\n",
            "mov eax, offset ",
            $pml4,
            "\n",
            "mov cr3, eax\n",
            "mov ecx, 0xc0000080\n",
            "rdmsr\n",
            "or eax, 0x100\n",
            "wrmsr\n",
            "lgdt [gdt64_ptr]\n",
            "mov eax, cr0\n",
            "and eax, 0xfffffffb\n",
            "or eax, 0x80000023\n",
            "mov cr0, eax\n",
        )
    };
}

/// The global `gdt64`: null, 64-bit code (0x08), flat data (0x10) and two spare descriptors,
/// followed by its pointer `gdt64_ptr` (limit, 32-bit base).
macro_rules! gdt64_asm {
    () => {
        concat!(
            ".balign 8\n",
            ".global gdt64\n",
            "gdt64:\n",
            ".quad 0\n",
            ".quad 0x00af9a000000ffff\n",
            ".quad 0x00cf92000000ffff\n",
            ".quad 0\n",
            ".quad 0\n",
            "gdt64_end:\n",
            ".balign 4\n",
            ".global gdt64_ptr\n",
            "gdt64_ptr:\n",
            ".word gdt64_end - gdt64 - 1\n",
            ".long gdt64\n",
        )
    };
}
