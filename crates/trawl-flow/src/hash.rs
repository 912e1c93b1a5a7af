//! A small, fast hasher for per-packet maps keyed by small `Copy` values (circuits, flow keys,
//! endpoints): the flow table's and the report engine's. std's SipHash costs several times more
//! per lookup on the per-packet path (it was a quarter of `trawl flows`' time). This is a
//! multiply-rotate hash (the FxHash recipe) with a final mix so that the high bits, which the
//! table's control bytes use, depend on every input byte.
//!
//! [`FastMap`] starts every hash from 0: deterministic. [`SeededMap`] starts from a random
//! seed drawn for each map, so that traffic crafted to collide in one process's table cannot
//! simply be worked out beforehand (the flow table's keys come from the packets). It is not a
//! keyed cryptographic hash: it raises the bar, as foldhash and ahash do, and costs nothing per
//! packet.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A map with [`FastHasher`] started from a random seed (see the module documentation).
pub type SeededMap<K, V> = HashMap<K, V, Seeded>;

/// Builds [`FastHasher`]s from a seed drawn once, when the map is made.
#[derive(Clone, Copy, Debug)]
pub struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        // std's per-process random keys, advanced for every RandomState.
        Seeded(RandomState::new().hash_one(0x7472_6177_6c5f_666cu64) | 1)
    }
}

impl BuildHasher for Seeded {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

const K: u64 = 0x517c_c1b7_2722_0a95;

#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let x = self.0;
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
}
