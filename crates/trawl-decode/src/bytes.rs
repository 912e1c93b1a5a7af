//! Bounds-checked big-endian reads. Every read returns `None` past the end of the slice, so the
//! decoders above never index out of range.

#[inline]
pub(crate) fn u8_at(d: &[u8], off: usize) -> Option<u8> {
    d.get(off).copied()
}

#[inline]
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[inline]
pub(crate) fn le32(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[inline]
pub(crate) fn array<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    let b = d.get(off..off.checked_add(N)?)?;
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    Some(out)
}

/// The bytes from `start` to `end`, clamped to what the slice holds (empty if `start` is past it).
#[inline]
pub(crate) fn clamp(d: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(d.len());
    if start >= end { &[] } else { &d[start..end] }
}
