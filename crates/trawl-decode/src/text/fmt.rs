//! Small, allocation-free formatting helpers: decimal and hex numbers, addresses, and tcpdump's
//! hex-and-ASCII dump. They append to a `Vec<u8>`.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in decimal (the common case, kept apart so it stays in 32-bit arithmetic).
#[inline]
pub fn push_u32(out: &mut Vec<u8>, mut v: u32) {
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in decimal, zero-padded to `width` digits (more if needed).
#[inline]
pub fn push_u32_padded(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut x = v;
    while x > 0 {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    let digits = buf.len() - i;
    let start = buf.len() - digits.max(width).min(buf.len());
    out.extend_from_slice(&buf[start..]);
}

/// Appends `v` as lowercase hex without leading zeros (`%x`).
#[inline]
pub fn push_hex(out: &mut Vec<u8>, v: u32) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    let digits = (32 - v.leading_zeros()).div_ceil(4);
    for k in (0..digits).rev() {
        out.push(HEX[((v >> (k * 4)) & 0xf) as usize]);
    }
}

/// Appends `v` as lowercase hex padded with zeros to `width` digits (`%0Nx`).
#[inline]
pub fn push_hex_padded(out: &mut Vec<u8>, v: u32, width: u32) {
    let digits = ((32 - v.leading_zeros()).div_ceil(4)).max(width).min(8);
    for k in (0..digits).rev() {
        out.push(HEX[((v >> (k * 4)) & 0xf) as usize]);
    }
}

/// Appends one byte as two hex digits.
#[inline]
pub fn push_hex2(out: &mut Vec<u8>, b: u8) {
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

/// Appends a dotted-quad IPv4 address.
#[inline]
pub fn push_ipv4(out: &mut Vec<u8>, a: &[u8; 4]) {
    push_u32(out, a[0].into());
    out.push(b'.');
    push_u32(out, a[1].into());
    out.push(b'.');
    push_u32(out, a[2].into());
    out.push(b'.');
    push_u32(out, a[3].into());
}

/// Appends an IPv6 address as `inet_ntop` writes it: the longest run (first if tied) of two or
/// more zero groups becomes `::`, and `::a.b.c.d` / `::ffff:a.b.c.d` keep their IPv4 tail.
pub fn push_ipv6(out: &mut Vec<u8>, a: &[u8; 16]) {
    let mut words = [0u16; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    }
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let (mut cur_base, mut cur_len) = (usize::MAX, 0usize);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_base == usize::MAX {
                cur_base = i;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != usize::MAX {
            if best_base == usize::MAX || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = usize::MAX;
        }
    }
    if cur_base != usize::MAX && (best_base == usize::MAX || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != usize::MAX && best_len < 2 {
        best_base = usize::MAX;
    }
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    for (i, &w) in words.iter().enumerate() {
        if in_best(i) {
            if i == best_base {
                out.push(b':');
            }
            continue;
        }
        if i != 0 {
            out.push(b':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            push_ipv4(out, &[a[12], a[13], a[14], a[15]]);
            return;
        }
        push_hex(out, w.into());
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        out.push(b':');
    }
}

/// Appends a MAC address as `xx:xx:xx:xx:xx:xx`.
#[inline]
pub fn push_mac(out: &mut Vec<u8>, m: &[u8]) {
    for (i, &b) in m.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        push_hex2(out, b);
    }
}

/// tcpdump's hex and ASCII dump (`-x`-style lines, each introduced by "\n\t"), as printed for
/// payloads it cannot decode: `0x0000:  4500 0189 …  E.....`.
pub fn push_hexdump(out: &mut Vec<u8>, bytes: &[u8]) {
    for (line, chunk) in bytes.chunks(16).enumerate() {
        out.extend_from_slice(b"\n\t0x");
        push_hex_padded(out, (line * 16) as u32, 4);
        out.extend_from_slice(b": ");
        let start = out.len();
        for pair in chunk.chunks(2) {
            out.push(b' ');
            for &b in pair {
                push_hex2(out, b);
            }
        }
        // The hex column is 40 characters wide.
        let written = out.len() - start;
        out.resize(out.len() + 40usize.saturating_sub(written), b' ');
        out.extend_from_slice(b"  ");
        for &b in chunk {
            out.push(if b.is_ascii_graphic() { b } else { b'.' });
        }
    }
}

/// tcpdump's hex dump without the ASCII column (what it prints after some link-layer
/// summaries): `\n\t0x0000:  0101 0004`.
pub fn push_hexdump_plain(out: &mut Vec<u8>, bytes: &[u8]) {
    for (line, chunk) in bytes.chunks(16).enumerate() {
        out.extend_from_slice(b"\n\t0x");
        push_hex_padded(out, (line * 16) as u32, 4);
        out.extend_from_slice(b": ");
        for pair in chunk.chunks(2) {
            out.push(b' ');
            for &b in pair {
                push_hex2(out, b);
            }
        }
    }
}

/// Appends bytes as tcpdump prints "safe" strings: non-ASCII as `M-` plus the low 7 bits, control
/// characters as `^` plus the character 0x40 above.
pub fn push_safe(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        let mut c = b;
        if !c.is_ascii() {
            c &= 0x7f;
            out.extend_from_slice(b"M-");
        }
        if !(0x20..0x7f).contains(&c) {
            c ^= 0x40;
            out.push(b'^');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(s(|o| push_u32(o, 0)), "0");
        assert_eq!(s(|o| push_u32(o, u32::MAX)), "4294967295");
        assert_eq!(s(|o| push_u64(o, u64::MAX)), "18446744073709551615");
        assert_eq!(s(|o| push_u32_padded(o, 42, 6)), "000042");
        assert_eq!(s(|o| push_u32_padded(o, 999_999_999, 9)), "999999999");
        assert_eq!(s(|o| push_hex(o, 0xfe80)), "fe80");
        assert_eq!(s(|o| push_hex_padded(o, 0x100, 8)), "00000100");
    }

    #[test]
    fn ipv6_like_inet_ntop() {
        let cases: [(&str, &str); 8] = [
            ("::", "::"),
            ("::1", "::1"),
            ("fe80::1", "fe80::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8::", "2001:db8::"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("2200::210:2:0:0:4", "2200::210:2:0:0:4"),
        ];
        for (input, want) in cases {
            let a: std::net::Ipv6Addr = input.parse().unwrap();
            assert_eq!(s(|o| push_ipv6(o, &a.octets())), want, "{input}");
        }
    }

    #[test]
    fn hexdump_layout() {
        let got = s(|o| push_hexdump(o, b"E\x00\x01\x89\x00\x00@\x00@\x11$\xda\n\x00\x00\x8a\n"));
        assert_eq!(
            got,
            "\n\t0x0000:  4500 0189 0000 4000 4011 24da 0a00 008a  E.....@.@.$.....\n\t0x0010:  0a                                       ."
        );
    }
}
