//! Links each kernel with its own linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    for (bin, script) in [("vmcs-baremetal", "link.ld"), ("vmcs-l0", "multiboot.ld"), ("vmcs-l1test", "multiboot.ld")] {
        println!("cargo:rerun-if-changed={dir}/{script}");
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T,{dir}/{script}");
    }
}
