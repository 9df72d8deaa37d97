//! Finding line ends fast: a word-at-a-time look at the first bytes of a line, then `memchr2`.
//!
//! Most lines of an event stream are short (`event: x`, `id: 42`, the blank line), and for them
//! the setup of a vectorised search costs more than the search; two 8-byte words checked with
//! integer arithmetic find their end first.

/// The position of the first CR or LF in `bytes`.
#[inline]
pub(super) fn find_eol(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    while let Some(word) = bytes.get(offset..offset + 8) {
        let mut array = [0; 8];
        array.copy_from_slice(word);
        let mask = eol_mask(u64::from_le_bytes(array));
        if mask != 0 {
            return Some(offset + (mask.trailing_zeros() / 8) as usize);
        }
        offset += 8;
        if offset == 16 {
            break;
        }
    }
    memchr::memchr2(b'\r', b'\n', &bytes[offset..]).map(|end| offset + end)
}

/// A word whose lowest set bit lies in the first byte of `word` that is a CR or LF (bits above
/// it may be set spuriously: only the lowest one is meaningful), or zero if there is none.
#[inline]
fn eol_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let lf = word ^ (ONES * u64::from(b'\n'));
    let cr = word ^ (ONES * u64::from(b'\r'));
    ((lf.wrapping_sub(ONES) & !lf) | (cr.wrapping_sub(ONES) & !cr)) & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8]) -> Option<usize> {
        bytes.iter().position(|&b| b == b'\r' || b == b'\n')
    }

    #[test]
    fn agrees_with_a_byte_loop() {
        let alphabet = [
            b'a',
            b'\r',
            b'\n',
            0x8D,
            0x8A,
            0x0D ^ 0x80,
            0xFF,
            0,
            0x0C,
            0x0E,
            0x0B,
        ];
        let mut state = 7u32;
        for len in 0..64 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let pick = (state >> 16) as usize;
                        // Mostly plain bytes, so that line ends fall at every offset.
                        if pick.is_multiple_of(8) {
                            alphabet[pick / 8 % alphabet.len()]
                        } else {
                            b'x'
                        }
                    })
                    .collect();
                assert_eq!(find_eol(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn finds_ends_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for end in [b'\r', b'\n'] {
                    let mut bytes = vec![b'z'; len];
                    bytes[at] = end;
                    assert_eq!(find_eol(&bytes), Some(at));
                }
            }
            assert_eq!(find_eol(&vec![b'z'; len]), None);
        }
    }
}
