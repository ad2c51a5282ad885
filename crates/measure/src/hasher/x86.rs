//! The SHA-512 block function for x86-64 with AVX2 and BMI2, and a variant using AVX-512VL;
//! and [`pages8`], SHA-384 of eight 4 KiB pages at once with AVX-512F/BW.
//!
//! The 80 rounds of a block are a chain of scalar additions, rotates (`rorx`, BMI2) and
//! logic; the 64 words of its message schedule (FIPS 180-4 §6.4.2 step 1) are independent
//! of the rounds. So while block `n`'s rounds run on the scalar units, block `n + 1`'s
//! schedule (plus the round constants) is computed two words at a time in 128-bit vector
//! registers and stored for the next iteration: four schedule steps after each eight rounds.
//! The first block's schedule is computed before its rounds, with nothing to overlap.
//!
//! The two variants differ only in the vector rotate: AVX2 has no 64-bit rotate and uses two
//! shifts and an OR; AVX-512VL has `vprorq` and a three-input XOR (`vpternlogq`).
//!
//! This module is one of the two places in the workspace allowed `unsafe` (`xtask` tidy
//! checks the list): calling a `#[target_feature]` function, and unaligned vector loads and
//! stores within arrays whose bounds are checked below. Each use states why it is sound.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi64, _mm_alignr_epi8, _mm_loadu_si128, _mm_or_si128, _mm_ror_epi64,
    _mm_set_epi64x, _mm_setzero_si128, _mm_shuffle_epi8, _mm_slli_epi64, _mm_srli_epi64,
    _mm_storeu_si128, _mm_ternarylogic_epi64, _mm_xor_si128,
};

use super::{BLOCK, K};

/// Whether this CPU (and OS) runs [`compress_avx2`]'s fast path.
pub(super) fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("bmi2")
}

/// Whether this CPU (and OS) runs [`compress_avx512`]'s fast path.
pub(super) fn avx512_available() -> bool {
    avx2_available()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// SHA-512 block function, AVX2 schedule. Falls back to `sha2` if the CPU lacks AVX2 or BMI2.
pub(super) fn compress_avx2(state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
    if avx2_available() {
        // SAFETY: the CPU supports every feature `compress_avx2_impl` is compiled for.
        unsafe { compress_avx2_impl(state, blocks) }
    } else {
        sha2::block_api::compress512(state, blocks);
    }
}

/// SHA-512 block function, AVX-512VL schedule. Falls back to [`compress_avx2`] if the CPU
/// lacks AVX-512F or AVX-512VL.
pub(super) fn compress_avx512(state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
    if avx512_available() {
        // SAFETY: the CPU supports every feature `compress_avx512_impl` is compiled for.
        unsafe { compress_avx512_impl(state, blocks) }
    } else {
        compress_avx2(state, blocks);
    }
}

#[inline(always)]
fn big_sigma0(x: u64) -> u64 {
    x.rotate_right(28) ^ x.rotate_right(34) ^ x.rotate_right(39)
}

#[inline(always)]
fn big_sigma1(x: u64) -> u64 {
    x.rotate_right(14) ^ x.rotate_right(18) ^ x.rotate_right(41)
}

/// One round (FIPS 180-4 §6.4.2 step 3) on the working variables named in rotated order, so
/// no variable is ever moved: `T1 = h + Σ1(e) + Ch(e,f,g) + (K + W)`, `d += T1`,
/// `h = T1 + Σ0(a) + Maj(a,b,c)`. `h + (K + W)` is added first because `h` and the stored
/// `K + W` are ready long before `e`.
macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $kw:expr) => {
        let t1 =
            $h.wrapping_add($kw).wrapping_add($g ^ ($e & ($f ^ $g))).wrapping_add(big_sigma1($e));
        $d = $d.wrapping_add(t1);
        $h = t1.wrapping_add(big_sigma0($a).wrapping_add((($a ^ $b) & ($b ^ $c)) ^ $b));
    };
}

/// Eight rounds from round `$at`, after which the names are back in place.
macro_rules! eight_rounds {
    ([$a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident],
     $kw:ident, $at:expr) => {
        round!($a, $b, $c, $d, $e, $f, $g, $h, $kw[$at]);
        round!($h, $a, $b, $c, $d, $e, $f, $g, $kw[$at + 1]);
        round!($g, $h, $a, $b, $c, $d, $e, $f, $kw[$at + 2]);
        round!($f, $g, $h, $a, $b, $c, $d, $e, $kw[$at + 3]);
        round!($e, $f, $g, $h, $a, $b, $c, $d, $kw[$at + 4]);
        round!($d, $e, $f, $g, $h, $a, $b, $c, $kw[$at + 5]);
        round!($c, $d, $e, $f, $g, $h, $a, $b, $kw[$at + 6]);
        round!($b, $c, $d, $e, $f, $g, $h, $a, $kw[$at + 7]);
    };
}

/// Generates one block function: `$name`, compiled for `$features`, whose schedule uses
/// `$sigma0`/`$sigma1` (two words at a time).
macro_rules! block_function {
    ($name:ident, $features:literal, $sigma0:ident, $sigma1:ident) => {
        /// The schedule's first 16 words of `block`, byte-swapped, into `w[0..8]`, and
        /// `K + W` for them into `kw[0..16]`.
        #[inline]
        #[target_feature(enable = $features)]
        fn load(block: &[u8; BLOCK], w: &mut [__m128i; 40], kw: &mut [u64; 80]) {
            // Each 64-bit lane's bytes reversed: big-endian words to native.
            let swap = _mm_set_epi64x(0x0809_0a0b_0c0d_0e0f, 0x0001_0203_0405_0607);
            for (i, pair) in block.as_chunks::<16>().0.iter().enumerate() {
                // SAFETY: `pair` is 16 readable bytes; the load is unaligned.
                let words = unsafe { _mm_loadu_si128(pair.as_ptr().cast()) };
                w[i] = _mm_shuffle_epi8(words, swap);
                store_kw(kw, i, w[i]);
            }
        }

        /// Schedule words `2i` and `2i + 1` (16 <= 2i < 80) from the 16 before them, and
        /// `K + W` for them into `kw`.
        #[inline]
        #[target_feature(enable = $features)]
        fn step(w: &mut [__m128i; 40], kw: &mut [u64; 80], i: usize) {
            // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], for t = 2i and 2i + 1.
            let t15 = _mm_alignr_epi8::<8>(w[i - 7], w[i - 8]);
            let t7 = _mm_alignr_epi8::<8>(w[i - 3], w[i - 4]);
            let sum = _mm_add_epi64(_mm_add_epi64(w[i - 8], $sigma0(t15)), t7);
            w[i] = _mm_add_epi64(sum, $sigma1(w[i - 1]));
            store_kw(kw, i, w[i]);
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn store_kw(kw: &mut [u64; 80], i: usize, w: __m128i) {
            let k = &K[2 * i..2 * i + 2];
            let out = &mut kw[2 * i..2 * i + 2];
            // SAFETY: `k` and `out` are two u64s (16 bytes) each, bounds-checked by the
            // slicing above; the load and store are unaligned.
            unsafe {
                let sum = _mm_add_epi64(w, _mm_loadu_si128(k.as_ptr().cast()));
                _mm_storeu_si128(out.as_mut_ptr().cast(), sum);
            }
        }

        #[target_feature(enable = $features)]
        pub(super) fn $name(state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
            let Some(first) = blocks.first() else { return };
            let mut w = [_mm_setzero_si128(); 40];
            let mut current = [0u64; 80];
            let mut next = [0u64; 80];
            load(first, &mut w, &mut current);
            for i in 8..40 {
                step(&mut w, &mut current, i);
            }
            for n in 0..blocks.len() {
                let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
                if let Some(following) = blocks.get(n + 1) {
                    load(following, &mut w, &mut next);
                    for r in 0..8 {
                        eight_rounds!([a, b, c, d, e, f, g, h], current, 8 * r);
                        for i in 8 + 4 * r..12 + 4 * r {
                            step(&mut w, &mut next, i);
                        }
                    }
                    eight_rounds!([a, b, c, d, e, f, g, h], current, 64);
                    eight_rounds!([a, b, c, d, e, f, g, h], current, 72);
                } else {
                    for r in 0..10 {
                        eight_rounds!([a, b, c, d, e, f, g, h], current, 8 * r);
                    }
                }
                for (word, add) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
                    *word = word.wrapping_add(add);
                }
                core::mem::swap(&mut current, &mut next);
            }
        }
    };
}

/// σ0 of two words, AVX2: ROTR 1 ^ ROTR 8 ^ SHR 7.
#[inline]
#[target_feature(enable = "avx2")]
fn sigma0_avx2(x: __m128i) -> __m128i {
    let r1 = _mm_or_si128(_mm_srli_epi64::<1>(x), _mm_slli_epi64::<63>(x));
    let r8 = _mm_or_si128(_mm_srli_epi64::<8>(x), _mm_slli_epi64::<56>(x));
    _mm_xor_si128(_mm_xor_si128(r1, r8), _mm_srli_epi64::<7>(x))
}

/// σ1 of two words, AVX2: ROTR 19 ^ ROTR 61 ^ SHR 6.
#[inline]
#[target_feature(enable = "avx2")]
fn sigma1_avx2(x: __m128i) -> __m128i {
    let r19 = _mm_or_si128(_mm_srli_epi64::<19>(x), _mm_slli_epi64::<45>(x));
    let r61 = _mm_or_si128(_mm_srli_epi64::<61>(x), _mm_slli_epi64::<3>(x));
    _mm_xor_si128(_mm_xor_si128(r19, r61), _mm_srli_epi64::<6>(x))
}

/// σ0 of two words, AVX-512VL: the rotates are `vprorq`, the XOR of three `vpternlogq`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn sigma0_avx512(x: __m128i) -> __m128i {
    let (r1, r8) = (_mm_ror_epi64::<1>(x), _mm_ror_epi64::<8>(x));
    _mm_ternarylogic_epi64::<0x96>(r1, r8, _mm_srli_epi64::<7>(x))
}

/// σ1 of two words, AVX-512VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn sigma1_avx512(x: __m128i) -> __m128i {
    let (r19, r61) = (_mm_ror_epi64::<19>(x), _mm_ror_epi64::<61>(x));
    _mm_ternarylogic_epi64::<0x96>(r19, r61, _mm_srli_epi64::<6>(x))
}

mod avx2 {
    use super::*;
    block_function!(compress, "avx2,bmi2", sigma0_avx2, sigma1_avx2);
}

mod avx512 {
    use super::*;
    block_function!(compress, "avx2,bmi2,avx512f,avx512vl", sigma0_avx512, sigma1_avx512);
}

/// # Safety
/// The CPU must support AVX2 and BMI2.
unsafe fn compress_avx2_impl(state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx2::compress(state, blocks) }
}

/// # Safety
/// The CPU must support AVX2, BMI2, AVX-512F and AVX-512VL.
unsafe fn compress_avx512_impl(state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx512::compress(state, blocks) }
}

/// Whether [`pages8`] can run: AVX-512F (gathers, rotates, three-input logic) and AVX-512BW
/// (the byte swap).
pub(super) fn pages8_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// SHA-384 of eight 4 KiB pages at once (`pages` is exactly 8 × 4096 bytes): one 64-bit lane
/// of each 512-bit register per page, so the eight independent hashes share every
/// instruction. The SNP launch digest hashes every firmware page this way. Returns `None`
/// when the CPU lacks AVX-512F or AVX-512BW.
pub(super) fn pages8(pages: &[u8; 8 * 4096]) -> Option<[[u8; 48]; 8]> {
    if !pages8_available() {
        return None;
    }
    // SAFETY: the CPU supports every feature `pages8_impl` is compiled for.
    Some(unsafe { pages8_impl(pages) })
}

/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pages8_impl(pages: &[u8; 8 * 4096]) -> [[u8; 48]; 8] {
    use core::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_i64gather_epi64, _mm512_ror_epi64, _mm512_set_epi64,
        _mm512_set1_epi64, _mm512_shuffle_epi8, _mm512_srli_epi64, _mm512_storeu_si512,
        _mm512_ternarylogic_epi64,
    };
    const PAGE: i64 = 4096;
    // Byte offsets of word 0 of each lane's page; a word t of block j is at + j*128 + t*8.
    let lanes =
        _mm512_set_epi64(7 * PAGE, 6 * PAGE, 5 * PAGE, 4 * PAGE, 3 * PAGE, 2 * PAGE, PAGE, 0);
    // Reverses the bytes of each 64-bit word (big-endian message words).
    let swap = _mm512_set_epi64(
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
    );
    let mut state = [_mm512_set1_epi64(0); 8];
    for (s, v) in state.iter_mut().zip(super::INITIAL) {
        *s = _mm512_set1_epi64(v as i64);
    }

    /// The 80 rounds of one block in all eight lanes, the schedule in a ring of 16.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rounds(state: &mut [__m512i; 8], w: &mut [__m512i; 16]) {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for t in 0..80 {
            if t >= 16 {
                let w15 = w[(t + 1) & 15];
                let w2 = w[(t + 14) & 15];
                let s0 = _mm512_ternarylogic_epi64::<0x96>(
                    _mm512_ror_epi64::<1>(w15),
                    _mm512_ror_epi64::<8>(w15),
                    _mm512_srli_epi64::<7>(w15),
                );
                let s1 = _mm512_ternarylogic_epi64::<0x96>(
                    _mm512_ror_epi64::<19>(w2),
                    _mm512_ror_epi64::<61>(w2),
                    _mm512_srli_epi64::<6>(w2),
                );
                let sum = _mm512_add_epi64(_mm512_add_epi64(w[t & 15], s0), w[(t + 9) & 15]);
                w[t & 15] = _mm512_add_epi64(sum, s1);
            }
            let big_s1 = _mm512_ternarylogic_epi64::<0x96>(
                _mm512_ror_epi64::<14>(e),
                _mm512_ror_epi64::<18>(e),
                _mm512_ror_epi64::<41>(e),
            );
            // Ch(e, f, g) = e ? f : g; Maj(a, b, c) = majority.
            let ch = _mm512_ternarylogic_epi64::<0xca>(e, f, g);
            let kw = _mm512_add_epi64(_mm512_set1_epi64(super::K[t] as i64), w[t & 15]);
            let t1 = _mm512_add_epi64(_mm512_add_epi64(h, kw), _mm512_add_epi64(big_s1, ch));
            let big_s0 = _mm512_ternarylogic_epi64::<0x96>(
                _mm512_ror_epi64::<28>(a),
                _mm512_ror_epi64::<34>(a),
                _mm512_ror_epi64::<39>(a),
            );
            let maj = _mm512_ternarylogic_epi64::<0xe8>(a, b, c);
            h = g;
            g = f;
            f = e;
            e = _mm512_add_epi64(d, t1);
            d = c;
            c = b;
            b = a;
            a = _mm512_add_epi64(t1, _mm512_add_epi64(big_s0, maj));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = _mm512_add_epi64(*s, v);
        }
    }

    for block in 0..32i64 {
        let mut w = [_mm512_set1_epi64(0); 16];
        for (t, word) in w.iter_mut().enumerate() {
            let offsets = _mm512_add_epi64(lanes, _mm512_set1_epi64(block * 128 + t as i64 * 8));
            // SAFETY: every offset is lane*4096 + block*128 + t*8 with lane < 8, block < 32,
            // t < 16, so each 8-byte read lies inside the 8 × 4096 bytes of `pages`.
            let gathered = unsafe { _mm512_i64gather_epi64::<1>(offsets, pages.as_ptr().cast()) };
            *word = _mm512_shuffle_epi8(gathered, swap);
        }
        rounds(&mut state, &mut w);
    }
    // The padding block is the same for every page: 0x80, zeros, the length 4096 × 8 bits.
    let mut w = [_mm512_set1_epi64(0); 16];
    w[0] = _mm512_set1_epi64(i64::MIN); // 0x8000_0000_0000_0000
    w[15] = _mm512_set1_epi64(4096 * 8);
    rounds(&mut state, &mut w);

    let mut words = [[0u64; 8]; 8];
    for (i, v) in state.iter().enumerate() {
        // SAFETY: `words[i]` is 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(words[i].as_mut_ptr().cast(), *v) };
    }
    let mut out = [[0u8; 48]; 8];
    for (lane, digest) in out.iter_mut().enumerate() {
        for (i, chunk) in digest.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&words[i][lane].to_be_bytes());
        }
    }
    out
}
