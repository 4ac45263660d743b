//! A frame or tensor size written `WxH` (`640x360`), as every tool's flags and configs take it.
use std::fmt;
use std::str::FromStr;

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    /// Both sides multiples of 4, as the generators' two stride-2 convolutions need.
    pub fn fits_the_generator(self) -> bool {
        self.width.is_multiple_of(4) && self.height.is_multiple_of(4)
    }
}

impl FromStr for Size {
    type Err = Error;

    /// `WxH` (or `WXH`) with both sides positive.
    fn from_str(s: &str) -> Result<Self, Error> {
        let side = |v: &str| v.trim().parse::<u32>().ok().filter(|&n| n > 0);
        match s.trim().split_once(['x', 'X']).map(|(w, h)| (side(w), side(h))) {
            Some((Some(width), Some(height))) => Ok(Self { width, height }),
            _ => Err(Error::Invalid(format!("{s:?} is not a size: give it as WxH, like 640x360"))),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wxh_and_says_how_to_write_it() {
        assert_eq!("640x360".parse::<Size>().unwrap(), Size { width: 640, height: 360 });
        assert_eq!(" 64X48 ".parse::<Size>().unwrap().to_string(), "64x48");
        assert!(!"62x48".parse::<Size>().unwrap().fits_the_generator());
        for bad in ["640", "0x360", "x", "640x", "axb", "-4x8"] {
            let err = bad.parse::<Size>().unwrap_err().to_string();
            assert!(err.contains("WxH"), "{bad}: {err}");
        }
    }
}
