//! Video frames in the layouts GStreamer uses, and their conversion to and from packed RGB.
mod color;

pub use color::{YuvMatrix, YuvRange, YuvSpec};

/// The raw video formats the `cyclegan` element accepts (GStreamer names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Rgba,
    Bgrx,
    I420,
    Nv12,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 5] = [Self::Rgb, Self::Rgba, Self::Bgrx, Self::I420, Self::Nv12];

    /// The name in GStreamer caps (`video/x-raw,format=...`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rgb => "RGB",
            Self::Rgba => "RGBA",
            Self::Bgrx => "BGRx",
            Self::I420 => "I420",
            Self::Nv12 => "NV12",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn is_yuv(self) -> bool {
        matches!(self, Self::I420 | Self::Nv12)
    }

    /// (bytes per row, rows) of each plane, before any stride padding. An iterator, not a Vec:
    /// the CUDA path asks for it several times per frame.
    pub fn plane_sizes(self, width: usize, height: usize) -> impl ExactSizeIterator<Item = (usize, usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (sizes, planes) = match self {
            Self::Rgb => ([(width * 3, height), (0, 0), (0, 0)], 1),
            Self::Rgba | Self::Bgrx => ([(width * 4, height), (0, 0), (0, 0)], 1),
            Self::I420 => ([(width, height), (cw, ch), (cw, ch)], 3),
            Self::Nv12 => ([(width, height), (cw * 2, ch), (0, 0)], 2),
        };
        sizes.into_iter().take(planes)
    }
}

/// A frame to read: one slice and one stride (bytes per row) per plane.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [&'a [u8]; 3],
    pub strides: [usize; 3],
}

/// A frame to write, laid out like [`FrameRef`].
#[derive(Debug)]
pub struct FrameMut<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [&'a mut [u8]; 3],
    pub strides: [usize; 3],
}

/// A frame that owns its planes, with GStreamer's default layout (rows padded to 4 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: Vec<Vec<u8>>,
    pub strides: Vec<usize>,
}

impl Frame {
    pub fn new(format: PixelFormat, width: usize, height: usize) -> Self {
        let (planes, strides) = format
            .plane_sizes(width, height)
            .enumerate()
            .map(|(i, (row, rows))| {
                let stride = row.next_multiple_of(4);
                // GStreamer gives the luma plane of 4:2:0 formats an even number of rows.
                let rows = if i == 0 && format.is_yuv() { rows.next_multiple_of(2) } else { rows };
                (vec![0u8; stride * rows], stride)
            })
            .unzip();
        Self { format, width, height, planes, strides }
    }

    /// The frame converted from packed RGB (`width * height * 3` bytes).
    pub fn from_rgb(format: PixelFormat, width: usize, height: usize, rgb: &[u8], yuv: YuvSpec) -> Self {
        let mut frame = Self::new(format, width, height);
        color::write_rgb(rgb, &mut frame.as_mut(), yuv);
        frame
    }

    pub fn as_ref(&self) -> FrameRef<'_> {
        let mut planes: [&[u8]; 3] = [&[], &[], &[]];
        let mut strides = [0; 3];
        for (i, (p, s)) in self.planes.iter().zip(&self.strides).enumerate() {
            planes[i] = p;
            strides[i] = *s;
        }
        FrameRef { format: self.format, width: self.width, height: self.height, planes, strides }
    }

    pub fn as_mut(&mut self) -> FrameMut<'_> {
        let mut strides = [0; 3];
        strides[..self.strides.len()].copy_from_slice(&self.strides);
        let mut it = self.planes.iter_mut().map(|p| p.as_mut_slice());
        let planes = [it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next().unwrap_or_default()];
        FrameMut { format: self.format, width: self.width, height: self.height, planes, strides }
    }

    /// All planes back to back, without padding changes (what an appsrc buffer holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.planes.concat()
    }
}

impl FrameRef<'_> {
    /// Packed RGB, `width * height * 3` bytes.
    pub fn to_rgb(&self, rgb: &mut Vec<u8>, yuv: YuvSpec) {
        rgb.resize(self.width * self.height * 3, 0);
        color::read_rgb(self, rgb, yuv);
    }
}

impl FrameMut<'_> {
    /// A read-only view of the same planes.
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: [&*self.planes[0], &*self.planes[1], &*self.planes[2]],
            strides: self.strides,
        }
    }

    /// Overwrites the frame with packed RGB (`width * height * 3` bytes).
    pub fn write_rgb(&mut self, rgb: &[u8], yuv: YuvSpec) {
        color::write_rgb(rgb, self, yuv);
    }
}
