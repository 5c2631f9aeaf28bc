//! Parser tests: precedence, spans, located errors, and arbitrary text never panicking.

use super::*;

fn shape(n: &Node) -> String {
    match &n.kind {
        NodeKind::Int(v) => v.to_string(),
        NodeKind::Bool(b) => b.to_string(),
        NodeKind::Name(p) => p.iter().map(|i| i.text.as_str()).collect::<Vec<_>>().join("."),
        NodeKind::Call { name, args } => {
            format!("{}({})", name.text, args.iter().map(shape).collect::<Vec<_>>().join(", "))
        }
        NodeKind::Unary { op, operand } => {
            format!("{}{}", if *op == UnOp::Not { "!" } else { "~" }, shape(operand))
        }
        NodeKind::Binary { op, lhs, rhs } => format!("({} {} {})", shape(lhs), op.symbol(), shape(rhs)),
        NodeKind::Bit { value, bit } => format!("{}[{}]", shape(value), bit.0),
        NodeKind::Bits { value, hi, lo } => format!("{}[{}:{}]", shape(value), hi.0, lo.0),
        NodeKind::In { value, set } => {
            format!("{} in {:?}", shape(value), set.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>())
        }
    }
}

#[test]
fn precedence_is_rusts_with_implication_loosest() {
    let n = parse("a.b && X & 0xfff == 0 => Y >> m == 0 || !c").unwrap();
    assert_eq!(shape(&n), "((a.b && ((X & 4095) == 0)) => (((Y >> m) == 0) || !c))");
    let n = parse("a => b => c").unwrap();
    assert_eq!(shape(&n), "(a => (b => c))");
    let n = parse("X + 16 * u64(N) - 1").unwrap();
    assert_eq!(shape(&n), "((X + (16 * u64(N))) - 1)");
    let n = parse("CS.type in {9, 11..=13} || ~X[7:4] != 1_000").unwrap();
    assert_eq!(shape(&n), "(CS.type in [(9, 9), (11, 13)] || (~X[7:4] != 1000))");
}

#[test]
fn spans_cover_the_text() {
    let t = "GUEST_CR0[31] => x";
    let n = parse(t).unwrap();
    assert_eq!(n.span, 0..t.len());
    let NodeKind::Binary { lhs, .. } = &n.kind else { panic!() };
    assert_eq!(&t[lhs.span.clone()], "GUEST_CR0[31]");
}

#[test]
fn errors_are_located() {
    let e = parse("a && ").unwrap_err();
    assert_eq!(e.span.start, 5);
    let e = parse("a == b == c").unwrap_err();
    assert!(e.message.contains("do not chain"), "{e:?}");
    assert_eq!(e.span, 7..9);
    let e = parse("x[3").unwrap_err();
    assert_eq!(e.message, "expected `]`");
    let e = parse("x $ y").unwrap_err();
    assert_eq!((e.span.clone(), e.message.as_str()), (2..3, "unexpected `$`"));
    let e = parse("x in {3..=1}").unwrap_err();
    assert_eq!(e.message, "empty range");
    let e = parse("0x1_0000_0000_0000_0000").unwrap_err();
    assert_eq!(e.message, "not a 64-bit integer");
    let e = parse(&"(".repeat(100_000)).unwrap_err();
    assert_eq!(e.message, "the expression nests too deeply");
    let e = parse(&"!".repeat(100_000)).unwrap_err();
    assert_eq!(e.message, "the expression nests too deeply");
}

#[test]
fn arbitrary_text_never_panics() {
    let seeds = ["GUEST_CR0[31] => x.y && CS.dpl in {0, 3..=5}", "u64(A) + 16 * B - 1 >> m == ~0xff", "é ∀ 0x"];
    let alphabet = b"()[]{}:,.=>!~|&^<>+-*0123456789abcxyzABC_ \"\n";
    let mut rng = vmcs_test_support::Rng(0x1234_5678_9abc_def0);
    for _ in 0..20_000 {
        let x = rng.next();
        let mut t: Vec<u8> = seeds[(x % 3) as usize].as_bytes().to_vec();
        for k in 0..(x >> 8) % 4 + 1 {
            let at = ((x >> (12 + 8 * k)) as usize) % (t.len() + 1);
            let c = alphabet[((x >> (16 + 8 * k)) as usize) % alphabet.len()];
            if (x >> (20 + k)) & 1 == 0 && at < t.len() {
                t.remove(at);
            } else {
                t.insert(at, c);
            }
        }
        let _ = parse(&String::from_utf8_lossy(&t));
    }
}
