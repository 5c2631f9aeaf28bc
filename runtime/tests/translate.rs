//! Translators between every two layouts: round trips keep every field both hold, and the fields
//! the destination cannot hold are reported (facts: testdata/reference/vmcs12-layout.json history).

mod common;

use common::Rng;
use vmcs::layouts::evmcs::Evmcs;
use vmcs::layouts::vmcs12::Vmcs12;
use vmcs::layouts::vmcs12_base::Vmcs12Base;
use vmcs::layouts::vmcs12_dead_space::Vmcs12DeadSpace;
use vmcs::layouts::vmcs12_tsc_scaling::Vmcs12TscScaling;
use vmcs::translate::TranslateInto;
use vmcs::{Layout, VmcsRead};

/// A layout with random bytes everywhere, reserved space included.
fn random<L: Layout + Default>(rng: &mut Rng) -> L {
    let mut l = L::default();
    for b in l.as_bytes_mut() {
        *b = rng.next() as u8;
    }
    l
}

/// a -> b -> a: every field a holds comes back if b holds it, else it is reported lost and reads 0.
fn round_trip<A, B>(rounds: usize) -> Vec<u32>
where
    A: Layout + Default + TranslateInto<B>,
    B: Layout + Default + TranslateInto<A>,
{
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ A::MAPPED.len() as u64 ^ (B::MAPPED.len() as u64) << 16);
    let mut lost = Vec::new();
    for _ in 0..rounds {
        let a: A = random(&mut rng);
        let mut b = B::default();
        let t = a.translate_into(&mut b);
        let mut back = A::default();
        b.translate_into(&mut back);
        for &e in A::MAPPED {
            let held = B::MAPPED.contains(&e);
            assert_eq!(held, !t.lost.contains(&e), "{e:#x}: lost list");
            let want = if held { a.read_raw(e as u64).unwrap() } else { 0 };
            assert_eq!(back.read_raw(e as u64).unwrap(), want, "{e:#x}");
            if held && e & 0x6000 == 0x2000 {
                // 64-bit fields carry both halves.
                assert_eq!(back.read_raw(e as u64 | 1), a.read_raw(e as u64 | 1));
            }
        }
        lost = t.lost.to_vec();
    }
    lost
}

macro_rules! every_pair {
    ($($t:ty),*) => {{
        let mut n = 0;
        every_pair!(@outer n; [$($t),*]; $($t),*);
        n
    }};
    (@outer $n:ident; $all:tt; $($a:ty),*) => { $( every_pair!(@inner $n; $a; $all); )* };
    (@inner $n:ident; $a:ty; [$($b:ty),*]) => {
        $( round_trip::<$a, $b>(20); $n += 1; )*
    };
}

#[test]
fn every_pair_round_trips() {
    let pairs = every_pair!(Vmcs12Base, Vmcs12TscScaling, Vmcs12DeadSpace, Vmcs12, Evmcs);
    let layouts = vmcs_gen::Schema::shipped().unwrap().layouts.len();
    assert_eq!(pairs, layouts * layouts, "every layout of the schema is covered");
}

#[test]
fn history_pairs_lose_exactly_what_changed() {
    // cr3_target_value0..3 (0x6008..0x600e) became dead space.
    assert_eq!(round_trip::<Vmcs12TscScaling, Vmcs12DeadSpace>(5), [0x6008, 0x600a, 0x600c, 0x600e]);
    // The oldest layout has no ENCLS-exiting bitmap (0x202e), TSC multiplier (0x2032) or CET state.
    let mut lost = round_trip::<Vmcs12, Vmcs12Base>(5);
    lost.sort();
    assert_eq!(lost, [0x202e, 0x2032, 0x6828, 0x682a, 0x682c, 0x6c18, 0x6c1a, 0x6c1c]);
    // Forward steps lose nothing KVM still held.
    assert!(round_trip::<Vmcs12DeadSpace, Vmcs12>(5).is_empty());
    assert!(round_trip::<Vmcs12Base, Vmcs12TscScaling>(5).is_empty());
}

#[test]
fn headers_travel_with_the_state() {
    let v = Vmcs12DeadSpace { hdr: 0x11e5_7ed0, launch_state: 1, ..Default::default() };
    let mut n = Vmcs12::default();
    v.translate_into(&mut n);
    assert_eq!(({ n.hdr }, { n.launch_state }), (0x11e5_7ed0, 1));
}
