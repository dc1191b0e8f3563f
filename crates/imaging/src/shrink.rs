//! Shrink-on-load for decoders that give rows: rows arrive one at a time,
//! already cut to the region's columns, and leave as a box-filtered image
//! smaller by whole factors — only one accumulator row is held besides the
//! output, whatever the source's height. The final exact size is left to
//! [`crate::resize`] (Lanczos3), as libvips' `shrink` then `reduce` do.

/// Box-averages `factor` × `factor` blocks of `channels`-byte pixels.
pub struct Shrinker {
    width: usize,
    channels: usize,
    factor: usize,
    out_width: usize,
    /// Sums of the block row under way, one per output sample.
    sums: Vec<u32>,
    /// Source rows in the block row under way.
    rows: usize,
    out: Vec<u8>,
}

impl Shrinker {
    /// For `height` rows of `width` pixels; `factor` ≥ 1. The output is
    /// allocated once, at its final size: growing it by doubling would
    /// briefly hold it three times over.
    pub fn new(width: u32, height: u32, channels: usize, factor: u32) -> Shrinker {
        let (width, factor) = (width as usize, factor.max(1) as usize);
        let out_width = width.div_ceil(factor);
        let out_rows = (height as usize).div_ceil(factor);
        Shrinker {
            width,
            channels,
            factor,
            out_width,
            sums: vec![0; out_width * channels],
            rows: 0,
            out: Vec::with_capacity(out_width * out_rows * channels),
        }
    }

    /// The width of the rows it makes.
    pub fn out_width(&self) -> u32 {
        self.out_width as u32
    }

    /// Adds one source row of `width` × `channels` bytes.
    pub fn push(&mut self, row: &[u8]) {
        debug_assert_eq!(row.len(), self.width * self.channels);
        let (c, f) = (self.channels, self.factor);
        for (x, px) in row.chunks_exact(c).enumerate() {
            let at = (x / f) * c;
            for (s, v) in self.sums[at..at + c].iter_mut().zip(px) {
                *s += *v as u32;
            }
        }
        self.rows += 1;
        if self.rows == f {
            self.emit();
        }
    }

    /// Writes the block row under way: each sample is its block's mean
    /// (blocks at the right and bottom edges may be narrower).
    fn emit(&mut self) {
        let (c, f) = (self.channels, self.factor);
        for ox in 0..self.out_width {
            let cols = (self.width - ox * f).min(f);
            let n = (cols * self.rows) as u32;
            for ch in 0..c {
                let s = &mut self.sums[ox * c + ch];
                self.out.push(((*s + n / 2) / n) as u8);
                *s = 0;
            }
        }
        self.rows = 0;
    }

    /// The shrunk image: its width, height and bytes.
    pub fn finish(mut self) -> (u32, u32, Vec<u8>) {
        if self.rows > 0 {
            self.emit();
        }
        let h = self.out.len() / (self.out_width * self.channels).max(1);
        (self.out_width as u32, h as u32, self.out)
    }

    /// Bytes held at the peak for a `width` × `height` input at `factor`.
    pub fn peak_bytes(width: u32, height: u32, channels: usize, factor: u32) -> u64 {
        let f = factor.max(1) as u64;
        let (ow, oh) = ((width as u64).div_ceil(f), (height as u64).div_ceil(f));
        ow * channels as u64 * 4 + ow * oh * channels as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_averaged_including_the_narrow_edges() {
        // 5 x 3, one channel, factor 2: blocks of 2x2, 1x2, 2x1, 1x1.
        let rows = [[0u8, 2, 4, 6, 8], [2, 4, 6, 8, 10], [10, 20, 30, 40, 50]];
        let mut s = Shrinker::new(5, 3, 1, 2);
        for r in &rows {
            s.push(r);
        }
        let (w, h, out) = s.finish();
        assert_eq!((w, h), (3, 2));
        assert_eq!(out, vec![2, 6, 9, 15, 35, 50]);
    }

    #[test]
    fn factor_one_is_the_identity() {
        let rows: Vec<Vec<u8>> = (0..4u8)
            .map(|y| (0..9).map(|x| x * 10 + y).collect())
            .collect();
        let mut s = Shrinker::new(3, 4, 3, 1);
        for r in &rows {
            s.push(r);
        }
        let (w, h, out) = s.finish();
        assert_eq!((w, h), (3, 4));
        assert_eq!(out, rows.concat());
    }
}
