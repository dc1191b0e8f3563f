//! Baseline JPEGs decoded a band of MCU rows at a time, as libvips
//! does: every block is entropy-decoded (the bitstream allows no
//! skipping), but only the blocks that touch the region are transformed;
//! three MCU rows of each component are held in a ring; each output row
//! is upsampled and colour-converted for the region's columns only and
//! handed to the shrinker; the decoder stops one MCU row below the
//! region. Memory is the ring, one row, and the shrunk output — not the
//! image. Sampling and colour follow `jpeg-decoder` (the whole-image
//! path) exactly, so the two agree to the IDCT's rounding.
//!
//! Progressive, arithmetic, 12-bit, CMYK and multi-scan files keep the
//! whole-image path ([`header::HeaderError::Unsupported`]).

mod header;
mod huffman;
mod idct;
mod input;

use crate::Pixels;
use crate::error::{ImagingError, Result, unreadable};
use crate::shrink::Shrinker;
use header::{Colour, Header, HeaderError};
use image::RgbImage;
use input::{Bits, Input};
use std::io::Read;

/// Whether the band path can read this file (its header, to the first
/// scan, must be in `prefix`).
pub(crate) fn streamable(prefix: &[u8]) -> bool {
    header::read(&mut Input::new(prefix)).is_ok()
}

/// Bytes held at the peak besides the shrunk output: the rings of three
/// MCU rows per component, the input buffer, one output row.
pub(crate) fn working_bytes(width: u32, region_width: u32) -> u64 {
    // Worst case: 4:4:4 with 4x4 sampling factors would be 32-row MCUs.
    let padded = (width as u64).div_ceil(32) * 32;
    3 * 32 * padded * 3 + (64 << 10) + region_width as u64 * 6
}

/// The `region` (x, y, w, h, stored pixels) decoded at 1/`scale` (1, 2, 4
/// or 8: the reduced transforms) as RGB, then shrunk by `factor`. The
/// region is cut from the scaled image as the whole-image path cuts it:
/// from x / scale, y / scale, its size rounded up.
pub(crate) fn decode_shrunk<R: Read>(
    source: R,
    region: (u32, u32, u32, u32),
    scale: u32,
    factor: u32,
) -> Result<Pixels> {
    let mut input = Input::new(source);
    let header = header::read(&mut input).map_err(|e| match e {
        HeaderError::Unsupported(m) => unreadable(format!("{m} cannot be read in bands")),
        HeaderError::Bad(m) => unreadable(m),
    })?;
    let mut bands = Bands::new(&header, region, scale, factor)?;
    bands.run(&header, &mut input).map_err(unreadable)?;
    let (w, h, out) = bands.shrinker.finish();
    RgbImage::from_raw(w, h, out)
        .map(Pixels::Rgb)
        .ok_or_else(|| unreadable("short output"))
}

/// How a component's samples map to output pixels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sampling {
    Full,
    /// The triangle filters of libjpeg's "fancy upsampling".
    H2V1,
    H1V2,
    H2V2,
    /// Other integer ratios: nearest sample.
    Nearest(usize, usize),
}

struct Plane {
    /// Samples per row (whole blocks).
    stride: usize,
    /// Rows held: three MCU rows.
    ring_rows: usize,
    ring: Vec<u8>,
    /// The component's true size (before block padding).
    width: usize,
    height: usize,
    sampling: Sampling,
    /// Block columns that touch the region (with a margin).
    cols: (usize, usize),
    /// The row's samples over the region's columns.
    line: Vec<u8>,
}

impl Plane {
    fn row(&self, k: usize) -> &[u8] {
        let k = k.min(self.height - 1) % self.ring_rows;
        &self.ring[k * self.stride..(k + 1) * self.stride]
    }
}

struct Bands {
    /// In scaled pixels.
    region: (usize, usize, usize, usize),
    /// Samples per block side: 8 / scale.
    block: usize,
    /// The scaled image's height.
    height: usize,
    mcu: (usize, usize),
    mcus: (usize, usize),
    planes: Vec<Plane>,
    colour: Colour,
    rgb: Vec<u8>,
    shrinker: Shrinker,
}

impl Bands {
    fn new(h: &Header, region: (u32, u32, u32, u32), scale: u32, factor: u32) -> Result<Bands> {
        let (x, y, w, rh) = (
            region.0 as usize,
            region.1 as usize,
            region.2 as usize,
            region.3 as usize,
        );
        if w == 0 || rh == 0 || x + w > h.width || y + rh > h.height {
            return Err(ImagingError::BadArgs(
                "the region is outside the image".into(),
            ));
        }
        let scale = match scale {
            1 | 2 | 4 | 8 => scale as usize,
            _ => return Err(unreadable("a DCT scale must be 1, 2, 4 or 8")),
        };
        let d = 8 / scale;
        // The scaled image and the region cut from it, as `decode::crop`
        // cuts the whole-image path's.
        let (sw, sh) = ((h.width * d).div_ceil(8), (h.height * d).div_ceil(8));
        let (x, y) = ((x / scale).min(sw - 1), (y / scale).min(sh - 1));
        let (w, rh) = (
            w.div_ceil(scale).clamp(1, sw - x),
            rh.div_ceil(scale).clamp(1, sh - y),
        );
        let hmax = h.components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = h.components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcu = (d * hmax, d * vmax);
        let mcus = (h.width.div_ceil(8 * hmax), h.height.div_ceil(8 * vmax));
        let planes = h
            .components
            .iter()
            .map(|c| {
                let (hr, vr) = (hmax / c.h, vmax / c.v);
                let stride = mcus.0 * c.h * d;
                let ring_rows = 3 * c.v * d;
                let lo = x.saturating_sub(mcu.0) / hr / d;
                let hi = ((x + w + mcu.0) / hr / d + 1).min(mcus.0 * c.h);
                Plane {
                    stride,
                    ring_rows,
                    ring: vec![0; stride * ring_rows],
                    width: (h.width * c.h * d).div_ceil(hmax * 8),
                    height: (h.height * c.v * d).div_ceil(vmax * 8),
                    sampling: match (hr, vr) {
                        (1, 1) => Sampling::Full,
                        (2, 1) => Sampling::H2V1,
                        (1, 2) => Sampling::H1V2,
                        (2, 2) => Sampling::H2V2,
                        other => Sampling::Nearest(other.0, other.1),
                    },
                    cols: (lo, hi),
                    line: vec![0; w],
                }
            })
            .collect();
        Ok(Bands {
            region: (x, y, w, rh),
            block: d,
            height: sh,
            mcu,
            mcus,
            planes,
            colour: h.colour,
            rgb: vec![0; w * 3],
            shrinker: Shrinker::new(w as u32, rh as u32, 3, factor),
        })
    }

    /// Whether MCU row `m` is within one MCU row of the region.
    fn needed(&self, m: usize) -> bool {
        let (_, y, _, h) = self.region;
        m * self.mcu.1 < y + h + self.mcu.1 && (m + 2) * self.mcu.1 > y
    }

    fn run<R: Read>(
        &mut self,
        h: &Header,
        input: &mut Input<R>,
    ) -> std::result::Result<(), String> {
        let (_, y, _, rh) = self.region;
        let last = ((y + rh - 1) / self.mcu.1 + 1).min(self.mcus.1 - 1);
        let mut bits = Bits::new();
        let mut preds = vec![0i32; h.components.len()];
        let mut coef = [0i16; 64];
        let mut left = h.restart_interval;
        for m in 0..=last {
            let transform = self.needed(m);
            for mx in 0..self.mcus.0 {
                if h.restart_interval > 0 {
                    if left == 0 {
                        restart(&mut bits, input)?;
                        preds.iter_mut().for_each(|p| *p = 0);
                        left = h.restart_interval;
                    }
                    left -= 1;
                }
                for (ci, c) in h.components.iter().enumerate() {
                    let (dc, ac) = (
                        h.dc[c.dc].as_ref().ok_or("a DC table is missing")?,
                        h.ac[c.ac].as_ref().ok_or("an AC table is missing")?,
                    );
                    let q = h.quant[c.tq]
                        .as_ref()
                        .ok_or("a quantisation table is missing")?;
                    for by in 0..c.v {
                        for bx in 0..c.h {
                            huffman::block(&mut bits, input, dc, ac, &mut preds[ci], &mut coef)?;
                            let p = &mut self.planes[ci];
                            let col = mx * c.h + bx;
                            if transform && (p.cols.0..p.cols.1).contains(&col) {
                                let d = self.block;
                                let row = (m * c.v * d + by * d) % p.ring_rows;
                                let at = row * p.stride + col * d;
                                idct::scaled_block(d, &coef, q, &mut p.ring[at..], p.stride);
                            }
                        }
                    }
                }
            }
            if bits.overrun {
                return Err("the image data ends early".into());
            }
            if m >= 1 {
                self.emit(m - 1);
            }
        }
        if last == self.mcus.1 - 1 {
            self.emit(last);
        }
        Ok(())
    }

    /// Hands the region's rows of MCU row `m` to the shrinker: the next
    /// MCU row must already be in the rings (for the vertical filters).
    fn emit(&mut self, m: usize) {
        let (x, y, w, rh) = self.region;
        let from = (m * self.mcu.1).max(y);
        let to = ((m + 1) * self.mcu.1).min(self.height).min(y + rh);
        for row in from..to {
            for p in &mut self.planes {
                sample_row(p, row, x, w);
            }
            convert(self.colour, &self.planes, &mut self.rgb);
            self.shrinker.push(&self.rgb);
        }
    }
}

/// Waits for the restart marker at the end of an interval.
fn restart<R: Read>(bits: &mut Bits, input: &mut Input<R>) -> std::result::Result<(), String> {
    if bits.overrun {
        return Err("an interval's data ends before its restart marker".into());
    }
    bits.reset();
    let marker = match bits.marker.take() {
        Some(m) => m,
        None => {
            // The marker follows the padding bits: find the next FF xx.
            let mut b = input
                .byte()
                .map_err(|_| "the data ends before a restart marker")?;
            loop {
                if b == 0xFF {
                    let m = input.byte().map_err(|_| "the data ends inside a marker")?;
                    if m != 0 && m != 0xFF {
                        break m;
                    }
                }
                b = input
                    .byte()
                    .map_err(|_| "the data ends before a restart marker")?;
            }
        }
    };
    if (0xD0..=0xD7).contains(&marker) {
        Ok(())
    } else {
        Err(format!(
            "a restart marker was expected, found FF{marker:02X}"
        ))
    }
}

/// The component's samples at output row `row`, columns `x .. x + w`,
/// into `p.line`.
fn sample_row(p: &mut Plane, row: usize, x: usize, w: usize) {
    let mut line = std::mem::take(&mut p.line);
    let iw = p.width;
    match p.sampling {
        Sampling::Full => line.copy_from_slice(&p.row(row)[x..x + w]),
        Sampling::Nearest(hr, vr) => {
            let r = p.row(row / vr);
            for (o, j) in line.iter_mut().zip(x..) {
                *o = r[j / hr];
            }
        }
        Sampling::H1V2 => {
            let (near, far) = vertical_pair(p, row);
            for (o, j) in line.iter_mut().zip(x..) {
                *o = ((3 * near[j] as u32 + far[j] as u32 + 2) >> 2) as u8;
            }
        }
        Sampling::H2V1 => {
            let r = p.row(row);
            for (o, j) in line.iter_mut().zip(x..) {
                let i = j / 2;
                let c = 3 * r[i] as u32 + 2;
                *o = if j % 2 == 0 {
                    if i == 0 {
                        r[0]
                    } else {
                        ((c + r[i - 1] as u32) >> 2) as u8
                    }
                } else if i + 1 >= iw {
                    r[i]
                } else {
                    ((c + r[i + 1] as u32) >> 2) as u8
                };
            }
        }
        Sampling::H2V2 => {
            let (near, far) = vertical_pair(p, row);
            let t = |i: usize| 3 * near[i] as u32 + far[i] as u32;
            for (o, j) in line.iter_mut().zip(x..) {
                *o = if j == 0 || j + 1 >= 2 * iw {
                    ((t(j / 2) + 2) >> 2) as u8
                } else if j % 2 == 1 {
                    let i = j.div_ceil(2);
                    ((3 * t(i - 1) + t(i) + 8) >> 4) as u8
                } else {
                    let i = j / 2;
                    ((3 * t(i) + t(i - 1) + 8) >> 4) as u8
                };
            }
        }
    }
    p.line = line;
}

/// The nearest and the other neighbouring component rows of output row
/// `row` for a vertical ratio of 2 (clamped at the top and the bottom).
fn vertical_pair(p: &Plane, row: usize) -> (&[u8], &[u8]) {
    let near = row / 2;
    let far = if row.is_multiple_of(2) {
        near.saturating_sub(1)
    } else {
        (near + 1).min(p.height - 1)
    };
    (p.row(near), p.row(far))
}

const FIXED: i32 = 20;

const fn f2f(x: f32) -> i32 {
    (x * (1 << FIXED) as f32 + 0.5) as i32
}

fn clamp(v: i32) -> u8 {
    (v >> FIXED).clamp(0, 255) as u8
}

/// BT.601 YCbCr to RGB in `jpeg-decoder`'s fixed point.
fn convert(colour: Colour, planes: &[Plane], rgb: &mut [u8]) {
    match colour {
        Colour::Grey => {
            for (o, &g) in rgb.chunks_exact_mut(3).zip(&planes[0].line) {
                o.fill(g);
            }
        }
        Colour::Rgb => {
            for (i, o) in rgb.chunks_exact_mut(3).enumerate() {
                o.copy_from_slice(&[planes[0].line[i], planes[1].line[i], planes[2].line[i]]);
            }
        }
        Colour::YCbCr => {
            let (ys, cbs, crs) = (&planes[0].line, &planes[1].line, &planes[2].line);
            for (i, o) in rgb.chunks_exact_mut(3).enumerate() {
                let y = ys[i] as i32 * (1 << FIXED) + (1 << (FIXED - 1));
                let (cb, cr) = (cbs[i] as i32 - 128, crs[i] as i32 - 128);
                o[0] = clamp(y + f2f(1.40200) * cr);
                o[1] = clamp(y - f2f(0.34414) * cb - f2f(0.71414) * cr);
                o[2] = clamp(y + f2f(1.77200) * cb);
            }
        }
    }
}

#[cfg(test)]
mod tests;
