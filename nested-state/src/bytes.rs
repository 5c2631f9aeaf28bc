//! Little-endian reads and writes that never panic: what is missing reads as 0, what does not fit
//! is not written.

pub(crate) fn read_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(read_array(b, off))
}

pub(crate) fn read_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(read_array(b, off))
}

pub(crate) fn read_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(read_array(b, off))
}

fn read_array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    b.get(off..off.saturating_add(N)).and_then(|s| <[u8; N]>::try_from(s).ok()).unwrap_or([0; N])
}

/// Copies as much of `src` to `out[off..]` as fits.
pub(crate) fn put(out: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = out.get_mut(off..) {
        let n = dst.len().min(src.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
    }
}
