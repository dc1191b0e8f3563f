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

/// The reduced transforms (`jpeg-decoder`'s, after Dugad and Ahuja's
/// scheme for size change in the compressed domain): an 8×8 block gives
/// `size` × `size` samples, for decoding at 1/2, 1/4 or 1/8 scale.
pub fn scaled_block(size: usize, coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
    match size {
        8 => block(coef, q, out, stride),
        4 => block4(coef, q, out, stride),
        2 => block2(coef, q, out, stride),
        _ => {
            let s0 = (W(coef[0] as i32 * q[0] as i32) + W(128 * 8)) / W(8);
            out[0] = clamp(s0);
        }
    }
}

#[allow(clippy::excessive_precision)]
fn block4(coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
    const CONST_BITS: usize = 12;
    const PASS1_BITS: usize = 2;
    const FINAL_BITS: usize = CONST_BITS + PASS1_BITS + 3;
    let dq = |i: usize| W(coef[i] as i32 * q[i] as i32);
    let mut temp = [W(0i32); 16];
    for i in 0..4 {
        let (s0, s1, s2, s3) = (dq(i), dq(i + 8), dq(i + 16), dq(i + 24));
        let x0 = (s0 + s2) << PASS1_BITS;
        let x2 = (s0 - s2) << PASS1_BITS;
        let p1 = (s1 + s3) * W(f2f(0.541196100));
        let t0 = (p1 + s3 * W(f2f(-1.847759065)) + W(512)) >> (CONST_BITS - PASS1_BITS);
        let t2 = (p1 + s1 * W(f2f(0.765366865)) + W(512)) >> (CONST_BITS - PASS1_BITS);
        temp[i] = x0 + t2;
        temp[i + 12] = x0 - t2;
        temp[i + 4] = x2 + t0;
        temp[i + 8] = x2 - t0;
    }
    for i in 0..4 {
        let (s0, s1, s2, s3) = (
            temp[i * 4],
            temp[i * 4 + 1],
            temp[i * 4 + 2],
            temp[i * 4 + 3],
        );
        let x0 = (s0 + s2) << CONST_BITS;
        let x2 = (s0 - s2) << CONST_BITS;
        let p1 = (s1 + s3) * W(f2f(0.541196100));
        let t0 = p1 + s3 * W(f2f(-1.847759065));
        let t2 = p1 + s1 * W(f2f(0.765366865));
        let round = W(1 << (FINAL_BITS - 1)) + W(128 << FINAL_BITS);
        let (x0, x2) = (x0 + round, x2 + round);
        let o = &mut out[i * stride..i * stride + 4];
        o[0] = clamp((x0 + t2) >> FINAL_BITS);
        o[3] = clamp((x0 - t2) >> FINAL_BITS);
        o[1] = clamp((x2 + t0) >> FINAL_BITS);
        o[2] = clamp((x2 - t0) >> FINAL_BITS);
    }
}

fn block2(coef: &[i16; 64], q: &[u16; 64], out: &mut [u8], stride: usize) {
    const SCALE_BITS: usize = 3;
    let dq = |i: usize| W(coef[i] as i32 * q[i] as i32);
    let (x0, x2) = (dq(0) + dq(8), dq(0) - dq(8));
    let (x1, x3) = (dq(1) + dq(9), dq(1) - dq(9));
    let round = W(1 << (SCALE_BITS - 1)) + W(128 << SCALE_BITS);
    let (x0, x2) = (x0 + round, x2 + round);
    out[0] = clamp((x0 + x1) >> SCALE_BITS);
    out[1] = clamp((x0 - x1) >> SCALE_BITS);
    out[stride] = clamp((x2 + x3) >> SCALE_BITS);
    out[stride + 1] = clamp((x2 - x3) >> SCALE_BITS);
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
