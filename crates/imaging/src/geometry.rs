//! Output sizes.

/// Fits `w` × `h` inside the box, keeping the aspect ratio, never
/// upscaling; each side at least 1.
pub fn fit(w: u32, h: u32, max_w: Option<u32>, max_h: Option<u32>) -> (u32, u32) {
    let sx = max_w.map_or(1.0, |m| m as f64 / w as f64);
    let sy = max_h.map_or(1.0, |m| m as f64 / h as f64);
    let s = sx.min(sy).min(1.0);
    if s >= 1.0 {
        return (w, h);
    }
    let scaled = |v: u32| ((v as f64 * s).round() as u32).max(1);
    (scaled(w), scaled(h))
}
