//! SHA-384 (FIPS 180-4 §6.5: SHA-512 with its own initial value, truncated to 48 bytes) for
//! the measurement streams, with a faster block function on x86-64.
//!
//! Every TDX register and the SNP launch digest are SHA-384 over public bytes, and two of those
//! streams are long and sequential: the kernel's Authenticode digest (11.7 MB for a Debian
//! cloud kernel) and MRTD over the firmware. One stream cannot be split across cores, so its
//! speed is the speed of the block function. The `sha2` crate's x86 block function runs at
//! 610 MB/s on the reference machine (AMD EPYC, Zen 4); [`x86`] reaches about 730 MB/s by
//! computing the next block's message schedule in vector registers while the scalar rounds of
//! the current block run, so the two use different execution units (numbers in
//! `ARCHITECTURE.md`). Where that block function cannot run (another architecture, a CPU
//! without AVX2 and BMI2, wasm), `sha2`'s block function is used: the padding and the output
//! here are the same either way, and the tests compare both with `sha2`'s own SHA-384.
//!
//! The SNP launch digest hashes every 4 KiB firmware page separately; [`page_digests`] hashes
//! eight of them at once where the CPU has AVX-512 (`x86::pages8`).
//!
//! Inputs are public (firmware, kernels, event data), so there is no secret for a timing side
//! channel to leak; the implementation is not constant-time and need not be.

#[cfg(target_arch = "x86_64")]
mod x86;

/// SHA-512 round constants (FIPS 180-4 §4.2.3).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// The SHA-384 initial hash value (FIPS 180-4 §5.3.4).
const INITIAL: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];

const BLOCK: usize = 128;

/// The block functions this build can use; [`Backend::best`] picks the fastest the CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `sha2::block_api::compress512`.
    Sha2,
    /// [`x86`] with the message schedule in AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// [`x86`] with the message schedule in AVX-512VL (native 64-bit rotates).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Backend {
    /// The fastest block function the running CPU supports.
    pub(crate) fn best() -> Backend {
        #[cfg(target_arch = "x86_64")]
        {
            if x86::avx512_available() {
                return Backend::Avx512;
            }
            if x86::avx2_available() {
                return Backend::Avx2;
            }
        }
        Backend::Sha2
    }

    /// Every block function the running CPU supports (for the tests and the fuzz target).
    pub(crate) fn available() -> Vec<Backend> {
        #[allow(unused_mut)]
        let mut all = vec![Backend::Sha2];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::avx2_available() {
                all.push(Backend::Avx2);
            }
            if x86::avx512_available() {
                all.push(Backend::Avx512);
            }
        }
        all
    }

    fn compress(self, state: &mut [u64; 8], blocks: &[[u8; BLOCK]]) {
        match self {
            Backend::Sha2 => sha2::block_api::compress512(state, blocks),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::compress_avx2(state, blocks),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => x86::compress_avx512(state, blocks),
        }
    }
}

/// Calls `each` with the SHA-384 of every 4 KiB page of `data` (whose length is a multiple
/// of 4096), in order. Where the CPU has AVX-512F and AVX-512BW, eight pages are hashed at
/// once, one per 64-bit lane (`x86::pages8`); otherwise, and for the last pages, one by one.
pub(crate) fn page_digests(data: &[u8], each: &mut dyn FnMut([u8; 48])) {
    const PAGE: usize = 4096;
    let (groups, rest) = data.as_chunks::<{ 8 * PAGE }>();
    for group in groups {
        #[cfg(target_arch = "x86_64")]
        if let Some(digests) = x86::pages8(group) {
            digests.into_iter().for_each(&mut *each);
            continue;
        }
        group.chunks_exact(PAGE).for_each(|page| each(Sha384::digest(page)));
    }
    rest.chunks_exact(PAGE).for_each(|page| each(Sha384::digest(page)));
}

/// Bytes an incremental hasher collects before running the block function: many callers
/// feed 128- and 256-byte pieces (MRTD's TDH.MR.EXTEND records), and the block function
/// computes each call's first schedule before it can overlap anything, so small calls are
/// gathered into calls of 32 blocks.
const BUFFER: usize = 32 * BLOCK;

/// An incremental SHA-384.
#[derive(Debug, Clone)]
pub(crate) struct Sha384 {
    backend: Backend,
    state: [u64; 8],
    buffer: Box<[u8; BUFFER]>,
    buffered: usize,
    /// Message length in bytes; SHA-384 allows up to 2^128 bits, far beyond any input here.
    length: u128,
}

impl Default for Sha384 {
    fn default() -> Self {
        Sha384::new()
    }
}

impl Sha384 {
    /// A hasher using the fastest block function of this CPU.
    pub(crate) fn new() -> Self {
        Sha384::with_backend(Backend::best())
    }

    /// A hasher using `backend` (which the caller has checked the CPU supports).
    pub(crate) fn with_backend(backend: Backend) -> Self {
        Sha384 { backend, state: INITIAL, buffer: Box::new([0; BUFFER]), buffered: 0, length: 0 }
    }

    /// SHA-384 of `data`, without an incremental hasher's buffer.
    pub(crate) fn digest(data: impl AsRef<[u8]>) -> [u8; 48] {
        let data = data.as_ref();
        let backend = Backend::best();
        let mut state = INITIAL;
        let (blocks, rest) = data.as_chunks::<BLOCK>();
        if !blocks.is_empty() {
            backend.compress(&mut state, blocks);
        }
        finish(backend, state, rest, data.len() as u128)
    }

    /// Appends `data` to the message.
    pub(crate) fn update(&mut self, data: impl AsRef<[u8]>) {
        let mut data = data.as_ref();
        self.length += data.len() as u128;
        if self.buffered > 0 {
            let take = data.len().min(BUFFER - self.buffered);
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < BUFFER {
                return;
            }
            let (blocks, _) = self.buffer.as_chunks::<BLOCK>();
            self.backend.compress(&mut self.state, blocks);
            self.buffered = 0;
        }
        // Large input goes straight to the block function; the tail (or a small input) waits.
        let (blocks, rest) = match data.len() {
            n if n >= BUFFER => data.as_chunks::<BLOCK>(),
            _ => (&[][..], data),
        };
        if !blocks.is_empty() {
            self.backend.compress(&mut self.state, blocks);
        }
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads the message and returns the digest.
    pub(crate) fn finalize(mut self) -> [u8; 48] {
        let (blocks, rest) = self.buffer[..self.buffered].as_chunks::<BLOCK>();
        if !blocks.is_empty() {
            self.backend.compress(&mut self.state, blocks);
        }
        finish(self.backend, self.state, rest, self.length)
    }
}

/// Pads the last `rest` (< 128) bytes of a `length`-byte message (FIPS 180-4 §5.1.2), runs the
/// last one or two blocks and returns the first 48 bytes of the state.
fn finish(backend: Backend, mut state: [u64; 8], rest: &[u8], length: u128) -> [u8; 48] {
    let bits = length.wrapping_mul(8);
    let mut tail = [0u8; 2 * BLOCK];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    // One block if the 0x80 byte and the 16-byte length fit after the data, else two.
    let len = if rest.len() < BLOCK - 16 { BLOCK } else { 2 * BLOCK };
    tail[len - 16..len].copy_from_slice(&bits.to_be_bytes());
    let (blocks, _) = tail[..len].as_chunks::<BLOCK>();
    backend.compress(&mut state, blocks);
    let mut out = [0u8; 48];
    for (chunk, word) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use super::{Backend, Sha384};

    /// A small deterministic generator (xorshift64*), so failures can be replayed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn fips_180_examples() {
        // FIPS 180-2 appendix D (SHA-384): "abc" (D.1) and the two-block message (D.2).
        let cases: [(&[u8], &str); 2] = [
            (
                b"abc",
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712\
                 fcc7c71a557e2db966c3e9fa91746039",
            ),
        ];
        for backend in Backend::available() {
            for (message, expected) in cases {
                let mut h = Sha384::with_backend(backend);
                h.update(message);
                assert_eq!(hex::encode(h.finalize()), expected, "{backend:?}");
            }
        }
    }

    #[test]
    fn equals_sha2_for_every_length_and_split() {
        let mut rng = Rng(0x5eed_0001);
        let data = rng.bytes(4 * 128 + 17);
        for backend in Backend::available() {
            // Every length around the padding boundaries and several blocks.
            for len in 0..data.len() {
                let expected: [u8; 48] = sha2::Sha384::digest(&data[..len]).into();
                let mut h = Sha384::with_backend(backend);
                h.update(&data[..len]);
                assert_eq!(h.finalize(), expected, "{backend:?}, length {len}");
                assert_eq!(Sha384::digest(&data[..len]), expected, "one-shot, length {len}");
            }
            // Random lengths fed in random pieces, smaller and larger than the buffer.
            for round in 0..300 {
                let len = (rng.next() % 40_000) as usize;
                let message = rng.bytes(len);
                let expected: [u8; 48] = sha2::Sha384::digest(&message).into();
                let mut h = Sha384::with_backend(backend);
                let mut rest = &message[..];
                while !rest.is_empty() {
                    let n = ((rng.next() % 10_000) as usize).min(rest.len());
                    h.update(&rest[..n]);
                    rest = &rest[n..];
                }
                assert_eq!(h.finalize(), expected, "{backend:?}, round {round}, length {len}");
            }
        }
    }

    #[test]
    fn page_digests_equal_one_page_at_a_time() {
        let mut rng = Rng(0x5eed_0002);
        // 0 to 19 pages: no group of eight, one, two, and groups with pages left over.
        for pages in 0..20 {
            let data = rng.bytes(pages * 4096);
            let mut got = Vec::new();
            super::page_digests(&data, &mut |d| got.push(d));
            let want: Vec<[u8; 48]> =
                data.chunks_exact(4096).map(|p| sha2::Sha384::digest(p).into()).collect();
            assert_eq!(got, want, "{pages} pages");
        }
    }

    #[test]
    fn the_best_backend_is_one_of_the_available() {
        assert!(Backend::available().contains(&Backend::best()));
    }
}
