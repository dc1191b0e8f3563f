//! Pixel density: what a source declares, what an output writes.

/// Pixels per inch, horizontally and vertically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Density {
    pub x: u32,
    pub y: u32,
}

/// The density a source declares (JPEG JFIF/EXIF-less APP0, PNG `pHYs`),
/// for `convertToDpi`; 72 when it says nothing.
pub fn declared(bytes: &[u8]) -> Density {
    let default = Density { x: 72, y: 72 };
    if bytes.starts_with(b"\xFF\xD8") && bytes.len() > 20 && &bytes[6..11] == b"JFIF\0" {
        let unit = bytes[13];
        let x = u16::from_be_bytes([bytes[14], bytes[15]]) as f64;
        let y = u16::from_be_bytes([bytes[16], bytes[17]]) as f64;
        let f = match unit {
            1 => 1.0,
            2 => 2.54,
            _ => return default,
        };
        if x > 0.0 && y > 0.0 {
            return Density {
                x: (x * f).round() as u32,
                y: (y * f).round() as u32,
            };
        }
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut at: usize = 8;
        while bytes.len().saturating_sub(at) >= 8 {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            if kind == b"pHYs" && at + 17 <= bytes.len() && bytes[at + 16] == 1 {
                let v = |o: usize| {
                    u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap()) as f64 * 0.0254
                };
                return Density {
                    x: v(at + 8).round() as u32,
                    y: v(at + 12).round() as u32,
                };
            }
            if kind == b"IDAT" {
                break;
            }
            // A chunk length is the file's word: on wasm32 `12 + len` can
            // wrap and loop for ever, so a length past the end ends the walk.
            match at.checked_add(12).and_then(|a| a.checked_add(len)) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_chunk_lengths_past_the_end_end_the_walk() {
        // A chunk claiming u32::MAX bytes: on wasm32 `12 + len` wrapped to
        // the same offset and looped for ever.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&u32::MAX.to_be_bytes());
        png.extend_from_slice(b"tEXt");
        png.extend_from_slice(&[0; 16]);
        assert_eq!(declared(&png), declared(b"not an image"));
        for cut in 0..png.len() {
            let _ = declared(&png[..cut]);
        }
    }
}
