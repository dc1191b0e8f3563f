//! The 8×8 inverse DCT with dequantisation, in the integer arithmetic of
//! stb_image's `stbi__idct_block` — the algorithm `jpeg-decoder` runs for
//! the whole-image path — so a streamed band and a whole decode agree to
//! the rounding of their SIMD variants.

use std::num::Wrapping as W;

/// The constants are written as stb_image publishes them and rounded
/// through `f32` as `jpeg-decoder` does, so the integers are the same.
const fn f2f(x: f32) -> i32 {
    (x * 4096.0 + 0.5) as i32
}

struct Kernel {
    xs: [W<i32>; 4],
    ts: [W<i32>; 4],
}

#[inline]
#[allow(clippy::excessive_precision)]
fn kernel(s: [W<i32>; 8], x_scale: i32) -> Kernel {
    let (t2, t3) = {
        let p1 = (s[2] + s[6]) * W(f2f(0.5411961));
        (
            p1 + s[6] * W(f2f(-1.847759065)),
            p1 + s[2] * W(f2f(0.765366865)),
        )
    };
    let (t0, t1) = ((s[0] + s[4]) << 12, (s[0] - s[4]) << 12);
    let xs = W(x_scale);
    let xs = [t0 + t3 + xs, t1 + t2 + xs, t1 - t2 + xs, t0 - t3 + xs];

    let (mut o0, mut o1, mut o2, mut o3) = (s[7], s[5], s[3], s[1]);
    let p3 = o0 + o2;
    let p4 = o1 + o3;
    let p1 = o0 + o3;
    let p2 = o1 + o2;
    let p5 = (p3 + p4) * W(f2f(1.175875602));
    o0 *= W(f2f(0.298631336));
    o1 *= W(f2f(2.053119869));
    o2 *= W(f2f(3.072711026));
    o3 *= W(f2f(1.501321110));
    let p1 = p5 + p1 * W(f2f(-0.899976223));
    let p2 = p5 + p2 * W(f2f(-2.562915447));
    let p3 = p3 * W(f2f(-1.961570560));
    let p4 = p4 * W(f2f(-0.390180644));
    o3 += p1 + p4;
    o2 += p2 + p3;
    o1 += p2 + p4;
    o0 += p1 + p3;
    Kernel {
        xs,
        ts: [o0, o1, o2, o3],
    }
}

fn clamp(x: W<i32>) -> u8 {
    x.0.clamp(0, 255) as u8
}

/// Dequantises `coef` (natural order) by `q` and writes the 8×8 samples
/// to `out`, rows `stride` bytes apart.
pub fn block(coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
    let dq = |i: usize| W(coef[i] as i32 * q[i] as i32);
    let mut temp = [W(0i32); 64];
    for i in 0..8 {
        if (1..8).all(|r| coef[i + 8 * r] == 0) {
            let dc = dq(i) << 2;
            for r in 0..8 {
                temp[i + 8 * r] = dc;
            }
            continue;
        }
        let k = kernel(std::array::from_fn(|r| dq(i + 8 * r)), 512);
        let ([x0, x1, x2, x3], [t0, t1, t2, t3]) = (k.xs, k.ts);
        temp[i] = (x0 + t3) >> 10;
        temp[i + 56] = (x0 - t3) >> 10;
        temp[i + 8] = (x1 + t2) >> 10;
        temp[i + 48] = (x1 - t2) >> 10;
        temp[i + 16] = (x2 + t1) >> 10;
        temp[i + 40] = (x2 - t1) >> 10;
        temp[i + 24] = (x3 + t0) >> 10;
        temp[i + 32] = (x3 - t0) >> 10;
    }
    // 1 << 17 to remove (12 bits of constants, 2 kept from the columns,
    // 3 from the two sqrt(8) scalings), rounded, plus the 128 level shift.
    const X_SCALE: i32 = 65536 + (128 << 17);
    for (r, row) in temp.chunks_exact(8).enumerate() {
        let o = &mut out[r * stride..r * stride + 8];
        if row[1..].iter().all(|v| v.0 == 0) {
            o.fill(clamp(((row[0] << 12) + W(X_SCALE)) >> 17));
            continue;
        }
        let k = kernel(std::array::from_fn(|c| row[c]), X_SCALE);
        let ([x0, x1, x2, x3], [t0, t1, t2, t3]) = (k.xs, k.ts);
        o[0] = clamp((x0 + t3) >> 17);
        o[7] = clamp((x0 - t3) >> 17);
        o[1] = clamp((x1 + t2) >> 17);
        o[6] = clamp((x1 - t2) >> 17);
        o[2] = clamp((x2 + t1) >> 17);
        o[5] = clamp((x2 - t1) >> 17);
        o[3] = clamp((x3 + t0) >> 17);
        o[4] = clamp((x3 - t0) >> 17);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dc_only_block_is_flat_and_level_shifted() {
        let mut coef = [0i16; 64];
        coef[0] = 10;
        let q = [8u16; 64];
        let mut out = [0u8; 64];
        block(&coef, &q, &mut out, 8);
        // DC 80 over the 8x8 DCT's gain of 8: +10 around 128.
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
    }

    #[test]
    fn one_horizontal_frequency_varies_along_rows_only() {
        let mut coef = [0i16; 64];
        coef[1] = 50;
        let mut out = [0u8; 64];
        block(&coef, &[1; 64], &mut out, 8);
        for r in out.chunks(8) {
            assert_eq!(r, &out[..8]);
        }
        assert!(out[0] > out[7], "a cosine falls across the row: {out:?}");
    }
}
