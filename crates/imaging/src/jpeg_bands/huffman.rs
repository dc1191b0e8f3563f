//! Huffman tables of a baseline JPEG (ITU T.81 annex C) and the decoding
//! of one 8×8 block's coefficients: a 9-bit lookup for the common short
//! codes, the canonical code limits for the rest.

use super::input::{Bits, Input};
use std::io::Read;

const LOOKUP_BITS: u32 = 9;

/// An AC code and its value bits together, for the common short ones:
/// bits consumed (0: not in the table), zero run, coefficient.
#[derive(Clone, Copy, Default)]
struct Fast {
    len: u8,
    run: u8,
    value: i16,
}

pub struct Table {
    /// For each 9-bit prefix: (code length, symbol), length 0 when longer.
    lookup: Vec<(u8, u8)>,
    /// For each 9-bit prefix: an AC coefficient decoded whole (libjpeg's
    /// and stb_image's "fast AC"), when code and value fit in 9 bits.
    fast: Vec<Fast>,
    /// Per code length 1..=16: the largest code, or -1.
    maxcode: [i32; 18],
    /// Per code length: symbol index minus the first code of that length.
    valoffset: [i32; 18],
    values: Vec<u8>,
}

/// Zigzag position → natural (row-major) position.
pub const UNZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

impl Table {
    /// From a DHT segment's 16 counts and its symbols.
    pub fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Table, String> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total != values.len() || total > 256 {
            return Err("a Huffman table's counts do not match its symbols".into());
        }
        let mut lookup = vec![(0u8, 0u8); 1 << LOOKUP_BITS];
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 18];
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            valoffset[len as usize] = k as i32 - code;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err("a Huffman table has more codes than its lengths allow".into());
                }
                if len <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - len;
                    let first = (code as usize) << shift;
                    for e in &mut lookup[first..first + (1 << shift)] {
                        *e = (len as u8, values[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let fast = (0..1u32 << LOOKUP_BITS)
            .map(|prefix| {
                let (len, rs) = lookup[prefix as usize];
                let (run, size) = (rs >> 4, (rs & 15) as u32);
                let total = len as u32 + size;
                if len == 0 || size == 0 || total > LOOKUP_BITS {
                    return Fast::default();
                }
                let raw = (prefix >> (LOOKUP_BITS - total)) & ((1 << size) - 1);
                Fast {
                    len: total as u8,
                    run,
                    value: extend(raw, size) as i16,
                }
            })
            .collect();
        Ok(Table {
            lookup,
            fast,
            maxcode,
            valoffset,
            values,
        })
    }

    pub fn decode<R: Read>(&self, bits: &mut Bits, input: &mut Input<R>) -> Result<u8, String> {
        let (len, v) = self.lookup[bits.peek(input, LOOKUP_BITS) as usize];
        if len > 0 {
            bits.consume(len as u32);
            return Ok(v);
        }
        let all = bits.peek(input, 16);
        for len in LOOKUP_BITS + 1..=16 {
            let code = (all >> (16 - len)) as i32;
            if code <= self.maxcode[len as usize] {
                bits.consume(len);
                let at = (self.valoffset[len as usize] + code) as usize;
                return self
                    .values
                    .get(at)
                    .copied()
                    .ok_or_else(|| "a Huffman code points past its table".to_string());
            }
        }
        Err("a Huffman code matches no table entry".into())
    }
}

/// The value of `size` raw bits as T.81's EXTEND gives it.
fn extend(v: u32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if v < 1 << (size - 1) {
        v as i32 - (1 << size) + 1
    } else {
        v as i32
    }
}

/// Decodes one block into `coef` (natural order), updating the DC
/// predictor.
pub fn block<R: Read>(
    bits: &mut Bits,
    input: &mut Input<R>,
    dc: &Table,
    ac: &Table,
    pred: &mut i32,
    coef: &mut [i16; 64],
) -> Result<(), String> {
    *coef = [0; 64];
    let t = dc.decode(bits, input)? as u32;
    if t > 11 {
        return Err("a DC difference is wider than 11 bits".into());
    }
    *pred = pred.wrapping_add(extend(bits.take(input, t), t));
    coef[0] = *pred as i16;
    let mut k = 1usize;
    while k < 64 {
        let f = ac.fast[bits.peek(input, LOOKUP_BITS) as usize];
        if f.len > 0 {
            bits.consume(f.len as u32);
            k += f.run as usize;
            if k > 63 {
                return Err("an AC run goes past the end of a block".into());
            }
            coef[UNZIGZAG[k] as usize] = f.value;
            k += 1;
            continue;
        }
        let rs = ac.decode(bits, input)?;
        let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += run;
        if k > 63 {
            return Err("an AC run goes past the end of a block".into());
        }
        coef[UNZIGZAG[k] as usize] = extend(bits.take(input, size), size) as i16;
        k += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decode_through_the_lookup_and_the_long_path() {
        // Lengths: 2 codes of 1 bit is impossible; 1 of 2 bits (00), 1 of
        // 3 bits (010), 1 of 12 bits (0110 0000 0000).
        let mut counts = [0u8; 16];
        counts[1] = 1;
        counts[2] = 1;
        counts[11] = 1;
        let t = Table::new(&counts, vec![7, 8, 9]).unwrap();
        let data = [0b0001_0011u8, 0b0000_0000, 0b0000_0000];
        let mut input = Input::new(&data[..]);
        let mut bits = Bits::new();
        assert_eq!(t.decode(&mut bits, &mut input).unwrap(), 7);
        assert_eq!(t.decode(&mut bits, &mut input).unwrap(), 8);
        assert_eq!(t.decode(&mut bits, &mut input).unwrap(), 9);
    }

    #[test]
    fn counts_that_overflow_their_lengths_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Table::new(&counts, vec![1, 2, 3]).is_err());
        assert!(Table::new(&counts, vec![1]).is_err());
    }

    #[test]
    fn extend_gives_negative_values_below_half_range() {
        assert_eq!(extend(0, 1), -1);
        assert_eq!(extend(1, 1), 1);
        assert_eq!(extend(0b010, 3), -5);
        assert_eq!(extend(0b110, 3), 6);
    }
}
