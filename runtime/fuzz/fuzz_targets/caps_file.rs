//! The capability-file parser on any text: a capability set or a located error, never a panic;
//! a parsed set is then evaluated (field existence, VMCS_ENUM) as `vmcs-gen fields --caps` does.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmcs_gen::{Caps, Schema};

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::shipped().expect("the shipped schema loads"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let schema = schema();
    match Caps::from_json(text, schema) {
        Ok(caps) => {
            let fields = schema.existing_fields(&caps);
            let enum_value = schema.arch_vmcs_enum(&caps);
            assert!(enum_value <= 0x3fe && fields.len() <= schema.fields.len());
        }
        Err(e) => assert!(e.line >= 1 && e.column >= 1 && e.line <= text.lines().count().max(1) + 1),
    }
});
