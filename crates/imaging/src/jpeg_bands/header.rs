//! The markers before the scan of a baseline JPEG: frame, quantisation
//! and Huffman tables, restart interval, the colour hints, and the scan
//! header. Anything the band decoder does not do (progressive,
//! arithmetic, 12-bit, CMYK, components in separate scans) is
//! `Unsupported`, and the caller keeps the whole-image path.

use super::huffman::{Table, UNZIGZAG};
use super::input::{Input, Truncated};
use std::io::Read;

#[derive(Debug)]
pub enum HeaderError {
    Unsupported(String),
    Bad(String),
}

impl From<Truncated> for HeaderError {
    fn from(_: Truncated) -> Self {
        HeaderError::Bad("the file ends inside its header".into())
    }
}

fn bad(m: &str) -> HeaderError {
    HeaderError::Bad(m.into())
}

pub struct Component {
    pub id: u8,
    pub h: usize,
    pub v: usize,
    pub tq: usize,
    pub dc: usize,
    pub ac: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Colour {
    Grey,
    YCbCr,
    Rgb,
}

pub struct Header {
    pub width: usize,
    pub height: usize,
    /// In scan order, which is frame order (one interleaved scan).
    pub components: Vec<Component>,
    pub quant: [Option<[u16; 64]>; 4],
    pub dc: [Option<Table>; 4],
    pub ac: [Option<Table>; 4],
    pub restart_interval: u16,
    pub colour: Colour,
}

/// Reads from SOI to the end of the first scan's header; the input is
/// then at the scan's entropy-coded data.
pub fn read<R: Read>(input: &mut Input<R>) -> Result<Header, HeaderError> {
    if input.u16()? != 0xFFD8 {
        return Err(bad("not a JPEG (no start-of-image marker)"));
    }
    let mut h = Header {
        width: 0,
        height: 0,
        components: Vec::new(),
        quant: [None; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        restart_interval: 0,
        colour: Colour::YCbCr,
    };
    let (mut jfif, mut adobe) = (false, None);
    loop {
        if input.byte()? != 0xFF {
            return Err(bad("a marker was expected"));
        }
        let mut m = input.byte()?;
        while m == 0xFF {
            m = input.byte()?;
        }
        if m == 0xD8 || (0xD0..=0xD7).contains(&m) || m == 0x01 {
            continue;
        }
        if m == 0xD9 {
            return Err(bad("the image ends before any scan"));
        }
        let len = (input.u16()? as usize)
            .checked_sub(2)
            .ok_or_else(|| bad("a segment length is shorter than itself"))?;
        match m {
            0xC0 | 0xC1 => frame(input, len, &mut h)?,
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(HeaderError::Unsupported(
                    "a progressive, lossless or arithmetic-coded JPEG".into(),
                ));
            }
            0xC4 => huffman(input, len, &mut h)?,
            0xDB => quant(input, len, &mut h)?,
            0xDD => {
                if len != 2 {
                    return Err(bad("a restart-interval segment is not 4 bytes"));
                }
                h.restart_interval = input.u16()?;
            }
            0xE0 | 0xEE if len >= 5 => {
                let mut id = [0u8; 5];
                for b in &mut id {
                    *b = input.byte()?;
                }
                if m == 0xE0 && &id == b"JFIF\0" {
                    jfif = true;
                    input.skip(len - 5)?;
                } else if m == 0xEE && &id == b"Adobe" && len >= 12 {
                    input.skip(6)?;
                    adobe = Some(input.byte()?);
                    input.skip(len - 12)?;
                } else {
                    input.skip(len - 5)?;
                }
            }
            0xDA => {
                scan(input, len, &mut h)?;
                h.colour = colour(&h.components, jfif, adobe)?;
                return Ok(h);
            }
            _ => input.skip(len)?,
        }
    }
}

fn frame<R: Read>(input: &mut Input<R>, len: usize, h: &mut Header) -> Result<(), HeaderError> {
    if !h.components.is_empty() {
        return Err(bad("two frame headers"));
    }
    if input.byte()? != 8 {
        return Err(HeaderError::Unsupported("a JPEG of 12-bit samples".into()));
    }
    h.height = input.u16()? as usize;
    h.width = input.u16()? as usize;
    let n = input.byte()? as usize;
    if h.width == 0 || h.height == 0 {
        return Err(HeaderError::Unsupported(
            "a JPEG whose height comes after its data".into(),
        ));
    }
    if n != 1 && n != 3 {
        return Err(HeaderError::Unsupported(format!(
            "a JPEG of {n} colour components"
        )));
    }
    if len != 6 + 3 * n {
        return Err(bad("a frame header's length does not match its components"));
    }
    for _ in 0..n {
        let id = input.byte()?;
        let s = input.byte()?;
        let tq = input.byte()? as usize;
        let (hs, vs) = ((s >> 4) as usize, (s & 15) as usize);
        if !(1..=4).contains(&hs) || !(1..=4).contains(&vs) || tq > 3 {
            return Err(bad(
                "a component's sampling factors or table are out of range",
            ));
        }
        h.components.push(Component {
            id,
            h: hs,
            v: vs,
            tq,
            dc: 0,
            ac: 0,
        });
    }
    if n == 1 {
        // One component is one non-interleaved scan: an MCU is one block
        // whatever the factors say.
        h.components[0].h = 1;
        h.components[0].v = 1;
    }
    let hmax = h.components.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = h.components.iter().map(|c| c.v).max().unwrap_or(1);
    if h.components
        .iter()
        .any(|c| hmax % c.h != 0 || vmax % c.v != 0)
    {
        return Err(HeaderError::Unsupported(
            "a JPEG whose chroma is subsampled by a non-integer ratio".into(),
        ));
    }
    Ok(())
}

fn huffman<R: Read>(
    input: &mut Input<R>,
    mut len: usize,
    h: &mut Header,
) -> Result<(), HeaderError> {
    while len > 0 {
        let tc = input.byte()?;
        let (class, id) = ((tc >> 4) as usize, (tc & 15) as usize);
        if class > 1 || id > 3 || len < 17 {
            return Err(bad("a Huffman table's class or id is out of range"));
        }
        let mut counts = [0u8; 16];
        for c in &mut counts {
            *c = input.byte()?;
        }
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        len = len
            .checked_sub(17 + total)
            .ok_or_else(|| bad("a Huffman table is longer than its segment"))?;
        let mut values = vec![0u8; total];
        for v in &mut values {
            *v = input.byte()?;
        }
        let table = Table::new(&counts, values).map_err(HeaderError::Bad)?;
        if class == 0 {
            h.dc[id] = Some(table);
        } else {
            h.ac[id] = Some(table);
        }
    }
    Ok(())
}

fn quant<R: Read>(input: &mut Input<R>, mut len: usize, h: &mut Header) -> Result<(), HeaderError> {
    while len > 0 {
        let pq = input.byte()?;
        let (wide, id) = (pq >> 4, (pq & 15) as usize);
        let size = if wide == 0 { 65 } else { 129 };
        if wide > 1 || id > 3 || len < size {
            return Err(bad(
                "a quantisation table's precision or id is out of range",
            ));
        }
        len -= size;
        let mut q = [0u16; 64];
        for &z in &UNZIGZAG {
            q[z as usize] = if wide == 0 {
                input.byte()? as u16
            } else {
                input.u16()?
            };
        }
        h.quant[id] = Some(q);
    }
    Ok(())
}

fn scan<R: Read>(input: &mut Input<R>, len: usize, h: &mut Header) -> Result<(), HeaderError> {
    if h.components.is_empty() {
        return Err(bad("a scan comes before the frame header"));
    }
    let n = input.byte()? as usize;
    if n != h.components.len() {
        return Err(HeaderError::Unsupported(
            "a JPEG whose components are in separate scans".into(),
        ));
    }
    if len != 4 + 2 * n {
        return Err(bad("a scan header's length does not match its components"));
    }
    for c in h.components.iter_mut() {
        let id = input.byte()?;
        let t = input.byte()?;
        if id != c.id {
            return Err(HeaderError::Unsupported(
                "a scan that orders components unlike the frame".into(),
            ));
        }
        (c.dc, c.ac) = ((t >> 4) as usize, (t & 15) as usize);
        if c.dc > 3 || c.ac > 3 {
            return Err(bad("a scan names a Huffman table out of range"));
        }
    }
    input.skip(3)?; // Ss, Se, Ah/Al: fixed for a sequential scan.
    for c in &h.components {
        if h.quant[c.tq].is_none() || h.dc[c.dc].is_none() || h.ac[c.ac].is_none() {
            return Err(bad("a component's tables are missing"));
        }
    }
    Ok(())
}

/// The colour model, as entropymine's rules (which `jpeg-decoder`
/// follows) decide it for one and three components.
fn colour(c: &[Component], jfif: bool, adobe: Option<u8>) -> Result<Colour, HeaderError> {
    if c.len() == 1 {
        return Ok(Colour::Grey);
    }
    Ok(match (c[0].id, c[1].id, c[2].id) {
        (1, 2, 3) => Colour::YCbCr,
        (82, 71, 66) => Colour::Rgb,
        (1, 34, 35) | (114, 103, 98) => {
            return Err(HeaderError::Unsupported("a big-gamut JPEG".into()));
        }
        _ if jfif => Colour::YCbCr,
        _ if adobe == Some(0) => Colour::Rgb,
        _ => Colour::YCbCr,
    })
}
