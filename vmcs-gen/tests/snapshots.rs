//! Snapshots of every view a reviewer must see change: layout tables, the field list and the code
//! of each emitter. CI runs with INSTA_UPDATE=no, so drift fails the build until a human accepts it.

use vmcs_gen::{Caps, Schema, emit, report};

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn layout_tables() {
    let schema = Schema::shipped().unwrap();
    for l in &schema.layouts {
        snapshot!(format!("layout_{}", l.name), report::layout_table(&schema, l));
    }
}

#[test]
fn field_list() {
    let schema = Schema::shipped().unwrap();
    snapshot!("fields", report::field_table(&schema, &schema.existing_fields(&Caps::All)));
}

#[test]
fn generated_code() {
    let schema = Schema::shipped().unwrap();
    for a in emit::all(&schema) {
        snapshot!(format!("generated_{}", a.file.trim_end_matches(".rs")), a.contents);
    }
}
