//! The rules follow the vmcs12 shape they are given, and the view and builder lose no byte.
//! Shapes come from testdata/reference/vmcs12-layout.json (Linux 7.2.8's struct vmcs12), or are
//! that shape changed on purpose; thresholds and header offsets are the uAPI reference's numbers.

use vmcs_nested_state::*;

fn reference_shape() -> Vmcs12Shape {
    let r = vmcs_test_support::reference("vmcs12-layout.json");
    let offset = |name: &str| {
        let m = r["members"].as_array().unwrap().iter().find(|m| m["member"] == name).unwrap();
        m["offset"].as_u64().unwrap() as usize
    };
    Vmcs12Shape {
        struct_size: r["sizeof_struct"].as_u64().unwrap() as usize,
        revision: r["revision_int"].as_u64().unwrap() as u32,
        hdr: offset("hdr"),
        primary_controls: offset("cpu_based_vm_exec_control"),
        secondary_controls: offset("secondary_vm_exec_control"),
        link_pointer: offset("vmcs_link_pointer"),
    }
}

/// L1 in VMX operation with a current VMCS whose area is `area` (4096 bytes) and `hdr` set.
fn l1(shape: Vmcs12Shape, hdr: u32, area: &mut [u8]) -> NestedStateBuilder<&[u8]> {
    area[shape.hdr..shape.hdr + 4].copy_from_slice(&hdr.to_le_bytes());
    NestedStateBuilder::new().vmxon_pa(0x10000).vmcs12_pa(0x20000).vmcs12(Some(&*area))
}

fn emit<A: AsRef<[u8]>>(b: &NestedStateBuilder<A>) -> Vec<u8> {
    let mut out = vec![0u8; b.len()];
    b.emit(&mut out).unwrap();
    out
}

#[test]
fn thresholds_come_from_the_shape() {
    let kvm = reference_shape();
    assert_eq!(kvm.validate(), Ok(()));
    // Linux 7.2.8 uapi: 128 + sizeof(struct vmcs12) = 1126, 128 + 4096 + 998 = 5222.
    assert_eq!((kvm.min_size_with_vmcs12(), kvm.min_size_with_shadow()), (1126, 5222));
    let vcpu = VcpuContext::default();
    let mut area = vec![0u8; 4096];
    let b = l1(kvm, kvm.revision, &mut area).declared_size(Some(1126));
    assert!(check(&emit(&b), kvm, &vcpu).is_ok());

    // A kernel whose vmcs12 grew by 16 bytes needs 1142 bytes for the same state.
    let grown = Vmcs12Shape { struct_size: kvm.struct_size + 16, ..kvm };
    assert_eq!(
        check(&emit(&b), grown, &vcpu).err(),
        Some(NestedStateError::VmxonWithoutVmcs { size: 1126, min: 1142 })
    );
    // ... and a new revision refuses the old one, naming both.
    let renumbered = Vmcs12Shape { revision: kvm.revision + 1, ..kvm };
    assert_eq!(
        check(&emit(&b), renumbered, &vcpu).err(),
        Some(NestedStateError::BadVmcs12Revision { revision: kvm.revision, expected: kvm.revision + 1 })
    );
}

#[test]
fn shadow_use_is_read_where_the_shape_says() {
    let kvm = reference_shape();
    let mut v = vec![0u8; 4096];
    assert!(!kvm.uses_shadow_vmcs(&v));
    v[kvm.primary_controls + 3] = 0x80; // activate secondary controls (bit 31)
    v[kvm.secondary_controls + 1] = 0x40; // VMCS shadowing (bit 14)
    assert!(kvm.uses_shadow_vmcs(&v), "link pointer 0 is a valid address");
    v[kvm.link_pointer..kvm.link_pointer + 8].copy_from_slice(&INVALID_GPA.to_le_bytes());
    assert!(!kvm.uses_shadow_vmcs(&v));
    // Elsewhere, the same bytes mean nothing.
    let moved = Vmcs12Shape { link_pointer: kvm.link_pointer + 8, ..kvm };
    assert!(moved.uses_shadow_vmcs(&v));
}

#[test]
fn validate_refuses_shapes_that_do_not_fit() {
    let kvm = reference_shape();
    assert_eq!(Vmcs12Shape { struct_size: 4097, ..kvm }.validate(), Err(ShapeError::TooLarge));
    assert_eq!(Vmcs12Shape { link_pointer: kvm.struct_size - 4, ..kvm }.validate(), Err(ShapeError::MemberOutside));
    assert_eq!(Vmcs12Shape { hdr: usize::MAX, ..kvm }.validate(), Err(ShapeError::MemberOutside));
}

/// A deterministic byte stream.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = vmcs_test_support::Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn rebuilding_a_checked_blob_keeps_every_byte_but_header_padding() {
    let kvm = reference_shape();
    for (seed, size) in [(1, 4224u32), (2, 8320), (3, 1126), (4, 3000), (5, 6000)] {
        let mut area = noise(seed, 4096);
        let mut shadow = noise(seed + 100, 4096);
        shadow[kvm.hdr..kvm.hdr + 4].copy_from_slice(&(kvm.revision | 1 << 31).to_le_bytes());
        let b = l1(kvm, kvm.revision, &mut area).shadow_vmcs12(Some(&shadow)).declared_size(Some(size));
        let mut blob = emit(&b);
        // Garbage in the header's padding (smm.pad and bytes 40..128).
        blob[26] = 0xee;
        blob[40..128].copy_from_slice(&noise(seed + 200, 88));
        let state = check(&blob, kvm, &VcpuContext::default()).unwrap();
        let again = emit(&NestedStateBuilder::from_state(&state));
        assert_eq!(again.len(), size as usize);
        for (i, (a, b)) in again.iter().zip(&blob).enumerate() {
            let padding = (26..28).contains(&i) || (40..128).contains(&i);
            assert_eq!(*a, if padding { 0 } else { *b }, "size {size}, byte {i}");
        }
    }
}

#[test]
fn read_views_what_a_truncated_blob_holds() {
    let kvm = reference_shape();
    let mut area = noise(9, 4096);
    let blob = emit(&l1(kvm, kvm.revision, &mut area));
    assert_eq!(blob.len(), 4224);
    for len in [128, 129, 1125, 1126, 3000, 4224] {
        let view = read(&blob[..len], kvm).unwrap();
        assert_eq!(view.size(), 4224);
        assert_eq!(view.as_bytes().len(), len);
        assert_eq!(view.vmcs12(), (len >= 1126).then(|| &area[..998]));
        assert_eq!(view.vmcs12_area(), (len > 128).then(|| &area[..len - 128]));
        assert_eq!(view.shadow_vmcs12_area(), None);
    }
    assert_eq!(read(&blob[..127], kvm).err(), Some(NestedStateError::HeaderTruncated { len: 127 }));
    // Bytes past the declared size are not part of the view.
    let mut longer = blob.clone();
    longer.extend_from_slice(&[1; 100]);
    assert_eq!(read(&longer, kvm).unwrap().as_bytes(), &blob[..]);
}

#[test]
fn flag_names_cover_the_uapi_bits() {
    // Linux 7.2.8 uapi/asm/kvm.h: GUEST_MODE 0x1, RUN_PENDING 0x2, EVMCS 0x4, MTF_PENDING 0x8, GIF_SET 0x100.
    let (names, unknown) = flag_names(0x10f | 0x30);
    assert_eq!(names.collect::<Vec<_>>(), ["GUEST_MODE", "RUN_PENDING", "EVMCS", "MTF_PENDING", "GIF_SET"]);
    assert_eq!(unknown, 0x30);
    let (mut names, unknown) = flag_names(0);
    assert_eq!((names.next(), unknown), (None, 0));
}

#[test]
fn every_error_has_a_rule_and_an_errno() {
    use NestedStateError as E;
    assert_eq!((E::HeaderTruncated { len: 0 }.rule(), E::HeaderTruncated { len: 0 }.errno_name()), (Some(2), "EFAULT"));
    assert_eq!((E::Truncated { size: 1, len: 0 }.rule(), E::Truncated { size: 1, len: 0 }.errno()), (None, -14));
    assert_eq!((E::ShadowVmcs12NotShadow.rule(), E::ShadowVmcs12NotShadow.errno()), (Some(22), -22));
    assert_eq!(E::MissingVmcs12Pa.rule(), Some(16));
}
