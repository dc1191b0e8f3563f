//! The source as a stream: bytes come from any `Read` (a blob read chunk
//! by chunk, or a slice) through one small buffer, so the file is never
//! held whole; and the entropy-coded data as bits, with the 0xFF00
//! stuffing removed and markers stopped at.

use std::io::Read;

const BUFFER: usize = 64 << 10;

pub struct Input<R> {
    r: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

#[derive(Debug)]
pub struct Truncated;

impl<R: Read> Input<R> {
    pub fn new(r: R) -> Input<R> {
        Input {
            r,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// The next byte, or `None` at the end of the source.
    pub fn next(&mut self) -> Option<u8> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = loop {
                match self.r.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break 0,
                }
            };
            if self.len == 0 {
                return None;
            }
        }
        self.pos += 1;
        Some(self.buf[self.pos - 1])
    }

    pub fn byte(&mut self) -> Result<u8, Truncated> {
        self.next().ok_or(Truncated)
    }

    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    pub fn skip(&mut self, mut n: usize) -> Result<(), Truncated> {
        while n > 0 {
            if self.pos == self.len {
                self.byte()?;
                n -= 1;
                continue;
            }
            let take = n.min(self.len - self.pos);
            self.pos += take;
            n -= take;
        }
        Ok(())
    }
}

/// Entropy-coded bits, most significant first.
pub struct Bits {
    acc: u64,
    count: u32,
    /// Of `count`, the zero bits fed after a marker (the last ones).
    fake: u32,
    /// Whether a block consumed fed zeros: the data ended early.
    pub overrun: bool,
    /// A marker met inside the data (RSTn, EOI): no more bits until it is
    /// taken; zeros are fed meanwhile, as decoders do for short data.
    pub marker: Option<u8>,
}

impl Bits {
    pub fn new() -> Bits {
        Bits {
            acc: 0,
            count: 0,
            fake: 0,
            overrun: false,
            marker: None,
        }
    }

    fn fill<R: Read>(&mut self, input: &mut Input<R>) {
        // Eight buffered bytes at once when none of them is 0xFF.
        if self.marker.is_none() && input.pos + 8 <= input.len {
            let w = u64::from_be_bytes(
                input.buf[input.pos..input.pos + 8]
                    .try_into()
                    .unwrap_or([0xFF; 8]),
            );
            let inv = !w;
            let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & w & 0x8080_8080_8080_8080 != 0;
            if !has_ff {
                let n = (64 - self.count) / 8;
                let v = if n == 8 { w } else { w >> (64 - 8 * n) };
                self.acc |= v << (64 - self.count - 8 * n);
                input.pos += n as usize;
                self.count += 8 * n;
                return;
            }
        }
        while self.count <= 56 {
            // The common case: a plain byte already in the buffer.
            if self.marker.is_none() && input.pos < input.len && input.buf[input.pos] != 0xFF {
                self.acc |= (input.buf[input.pos] as u64) << (56 - self.count);
                input.pos += 1;
                self.count += 8;
                continue;
            }
            let mut b = 0u8;
            if self.marker.is_some() {
                self.fake += 8;
            } else {
                match input.next() {
                    None => {
                        self.marker = Some(0xD9);
                        self.fake += 8;
                    }
                    Some(0xFF) => {
                        let mut next = input.next();
                        while next == Some(0xFF) {
                            next = input.next();
                        }
                        match next {
                            Some(0) => b = 0xFF,
                            Some(m) => {
                                self.marker = Some(m);
                                self.fake += 8;
                            }
                            None => {
                                self.marker = Some(0xD9);
                                self.fake += 8;
                            }
                        }
                    }
                    Some(v) => b = v,
                }
            }
            self.acc |= (b as u64) << (56 - self.count);
            self.count += 8;
        }
    }

    /// The next `n` (≤ 16) bits without consuming them.
    pub fn peek<R: Read>(&mut self, input: &mut Input<R>, n: u32) -> u32 {
        if self.count < n {
            self.fill(input);
        }
        (self.acc >> (64 - n)) as u32
    }

    pub fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.count -= n;
        if self.count < self.fake {
            self.overrun = true;
            self.fake = self.count;
        }
    }

    pub fn take<R: Read>(&mut self, input: &mut Input<R>, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(input, n);
        self.consume(n);
        v
    }

    /// Drops the bits left of the current byte and the buffered ones
    /// (at a restart marker).
    pub fn reset(&mut self) {
        self.acc = 0;
        self.count = 0;
        self.fake = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffed_bytes_are_data_and_markers_stop_the_bits() {
        let data = [0b1010_0000u8, 0xFF, 0x00, 0xFF, 0xD0, 0x55];
        let mut input = Input::new(&data[..]);
        let mut bits = Bits::new();
        assert_eq!(bits.take(&mut input, 3), 0b101);
        assert_eq!(bits.take(&mut input, 5), 0);
        assert_eq!(bits.take(&mut input, 8), 0xFF, "FF 00 is one FF byte");
        assert!(!bits.overrun);
        assert_eq!(bits.take(&mut input, 8), 0, "zeros after the marker");
        assert!(bits.overrun, "those zeros were not data");
        assert_eq!(bits.marker, Some(0xD0));
        assert_eq!(
            input.byte().unwrap(),
            0x55,
            "the marker is consumed, not what follows"
        );
    }

    #[test]
    fn skip_crosses_buffer_refills() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut input = Input::new(&data[..]);
        input.skip(150_001).unwrap();
        assert_eq!(input.byte().unwrap(), (150_001u32 % 256) as u8);
        assert!(input.skip(60_000).is_err());
    }
}
