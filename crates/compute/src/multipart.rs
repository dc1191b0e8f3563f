//! Multipart targets (AEM direct binary upload): a rendition of `size`
//! bytes is cut into equal parts, one per presigned URL in order, each
//! within `[minPartSize, maxPartSize]` (the last may be smaller). Too big
//! for the URLs given → `RenditionTooLarge` with the size, so the client
//! can ask again with more URLs.

use crate::error::{Failure, Reason};

/// Byte ranges, one per URL used (a prefix of the URLs).
pub fn plan(
    size: u64,
    urls: usize,
    min_part: u64,
    max_part: u64,
) -> Result<Vec<(u64, u64)>, Failure> {
    if size == 0 {
        return Ok(vec![(0, 0)]);
    }
    let even = size.div_ceil(urls.max(1) as u64);
    let part = even.max(min_part).max(1);
    if part > max_part {
        return Err(Failure {
            reason: Reason::RenditionTooLarge,
            message: format!(
                "the rendition has {size} bytes; {urls} part(s) of at most {max_part} bytes cannot hold it"
            ),
            size: Some(size),
        });
    }
    Ok((0..size.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(size)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// size, urls, min, max → parts
    type Case = (u64, usize, u64, u64, &'static [(u64, u64)]);

    #[test]
    fn table() {
        let ok: &[Case] = &[
            (10, 1, 0, 100, &[(0, 10)]),
            (10, 3, 0, 100, &[(0, 4), (4, 8), (8, 10)]),
            (10, 3, 6, 100, &[(0, 6), (6, 10)]),
            (100, 4, 10, 25, &[(0, 25), (25, 50), (50, 75), (75, 100)]),
            (0, 2, 5, 10, &[(0, 0)]),
        ];
        for (size, urls, min, max, want) in ok {
            assert_eq!(
                plan(*size, *urls, *min, *max).unwrap(),
                *want,
                "{size} {urls} {min} {max}"
            );
        }
        let e = plan(101, 4, 10, 25).unwrap_err();
        assert_eq!((e.reason, e.size), (Reason::RenditionTooLarge, Some(101)));
    }
}
