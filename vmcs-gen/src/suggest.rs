//! "Did you mean ...?": the known name closest to a misspelt one, for the schema's diagnostics
//! and vmcs-derive's.

/// Edit distance (ASCII-case-insensitive) counting insertions, deletions, substitutions and
/// transpositions of adjacent characters (optimal string alignment): `HOST_RPI` is 1 from
/// `HOST_RIP`, 2 from `HOST_RSP`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_uppercase()).collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The name of `known` closest to `name`, within `max` edits (the first of equally close ones).
pub fn closest<'k>(name: &str, known: impl IntoIterator<Item = &'k str>, max: usize) -> Option<&'k str> {
    known.into_iter().map(|k| (distance(name, k), k)).filter(|(d, _)| *d <= max).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}
