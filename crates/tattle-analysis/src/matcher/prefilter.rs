//! The sampled 4-gram prefilter: which windows of a haystack the automaton must walk.
//!
//! Must not touch: needles (it sees their bytes only), layers.

/// Haystacks shorter than this are walked whole: the prefilter would not pay for itself.
pub(super) const PREFILTER_MIN_HAY: usize = 256;
/// Bytes per gram of the prefilter.
const GRAM: usize = 4;
/// Bits of the two gram tables: a small one (8 KiB, stays in L1) tested at every sampled position
/// and a larger one (128 KiB) tested only when the first says yes; with a few thousand distinct
/// needle grams, random bytes pass both about once in a thousand samples.
const GRAM_BITS_1: u32 = 16;
const GRAM_BITS_2: u32 = 20;
/// More distinct grams than this fill the tables too much to filter anything.
const MAX_GRAMS: usize = 1 << 15;

/// Sampled-gram prefilter for the overlapping search. Every needle is at least `min_len` bytes, so
/// an occurrence covers `stride = min_len - GRAM + 1` consecutive gram start positions, one of them
/// a multiple of `stride`: only those positions are looked up. A gram that appears in no needle
/// rules out every occurrence through it; around a gram that may, the automaton walks the window
/// an occurrence through it could span. The windows found are exactly a superset of every
/// occurrence, so the matches are those of a walk over the whole haystack.
#[derive(Debug)]
pub(super) struct Prefilter {
    stride: usize,
    bits1: Vec<u64>,
    bits2: Vec<u64>,
}

impl Prefilter {
    pub(super) fn new(patterns: &[Vec<u8>]) -> Option<Self> {
        let min_len = patterns.iter().map(Vec::len).min()?;
        if min_len < GRAM {
            return None;
        }
        let mut grams: Vec<u32> = patterns
            .iter()
            .flat_map(|p| p.windows(GRAM).map(gram))
            .collect();
        grams.sort_unstable();
        grams.dedup();
        if grams.len() > MAX_GRAMS {
            return None;
        }
        let mut bits1 = vec![0u64; 1 << (GRAM_BITS_1 - 6)];
        let mut bits2 = vec![0u64; 1 << (GRAM_BITS_2 - 6)];
        for g in grams {
            let (h1, h2) = gram_hashes(g);
            bits1[h1 >> 6] |= 1 << (h1 & 63);
            bits2[h2 >> 6] |= 1 << (h2 & 63);
        }
        Some(Prefilter {
            stride: min_len - GRAM + 1,
            bits1,
            bits2,
        })
    }

    #[inline]
    fn may_match(&self, g: u32) -> bool {
        let (h1, h2) = gram_hashes(g);
        self.bits1[h1 >> 6] & (1 << (h1 & 63)) != 0 && self.bits2[h2 >> 6] & (1 << (h2 & 63)) != 0
    }

    /// Ascending windows `(a, b)` of `hay` such that every needle occurrence lies in exactly one.
    ///
    /// All grams of an occurrence are needle grams, so every sampled position inside it passes
    /// `may_match`. Hence an occurrence through a run of passing samples `p_first..=p_last`
    /// starts after the failing sample before the run and at or after `p_first + GRAM - max_len`,
    /// and ends before the failing sample after it plus `GRAM` and by `p_last + max_len`. Windows
    /// of two runs overlap by less than `GRAM` bytes, shorter than any needle.
    pub(super) fn windows<'a>(
        &'a self,
        hay: &'a [u8],
        max_len: usize,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        let mut i = 0usize;
        // Just past the last failing sample: no occurrence after it starts before this.
        let mut floor = 0usize;
        std::iter::from_fn(move || {
            while i + GRAM <= hay.len() {
                let pos = i;
                i += self.stride;
                if !self.may_match(gram(&hay[pos..pos + GRAM])) {
                    floor = pos + 1;
                    continue;
                }
                let a = (pos + GRAM).saturating_sub(max_len).max(floor);
                let mut last = pos;
                let mut b = hay.len();
                while i + GRAM <= hay.len() {
                    let p = i;
                    i += self.stride;
                    if self.may_match(gram(&hay[p..p + GRAM])) {
                        last = p;
                    } else {
                        floor = p + 1;
                        b = p + GRAM - 1;
                        break;
                    }
                }
                return Some((a, b.min(last + max_len).min(hay.len())));
            }
            None
        })
    }
}

#[inline]
fn gram(w: &[u8]) -> u32 {
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

#[inline]
fn gram_hashes(g: u32) -> (usize, usize) {
    let h1 = g.wrapping_mul(0x9e37_79b1) >> (32 - GRAM_BITS_1);
    let h2 = g
        .wrapping_mul(0x85eb_ca6b)
        .rotate_left(7)
        .wrapping_mul(0xc2b2_ae35)
        >> (32 - GRAM_BITS_2);
    (h1 as usize, h2 as usize)
}
