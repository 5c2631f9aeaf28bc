//! L1 chooses the encodings of its VMREAD/VMWRITE: any u64 must either name a vmcs12 field or fail,
//! never panic, and a write may touch only the bytes of the field it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite};

fuzz_target!(|ops: Vec<(u64, u64)>| {
    let mut v = Vmcs12::zeroed();
    for (i, b) in v.as_bytes_mut().iter_mut().enumerate() {
        *b = i as u8;
    }
    for (encoding, value) in ops {
        let before = v;
        match Vmcs12::locate(encoding) {
            None => {
                assert!(v.read_raw(encoding).is_err());
                assert!(v.write_raw(encoding, value).is_err());
                assert_eq!(v, before, "a failed write changed vmcs12");
            }
            Some(loc) => {
                v.write_raw(encoding, value).unwrap();
                let (lo, hi) = (loc.offset as usize, loc.offset as usize + loc.bytes());
                for (j, (a, b)) in before.as_bytes().iter().zip(v.as_bytes()).enumerate() {
                    assert!(a == b || (lo..hi).contains(&j), "write of {encoding:#x} touched byte {j}");
                }
                let mask = if loc.bytes() == 8 { u64::MAX } else { (1u64 << (8 * loc.bytes())) - 1 };
                assert_eq!(v.read_raw(encoding).unwrap(), value & mask);
            }
        }
    }
});
