//! One video frame through the generator: frame -> RGB -> tensor -> backend -> RGB -> frame.
//! The GStreamer element, the benchmark and the tests all go through this.
use crate::Result;
use crate::backend::Backend;
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::preprocess::{InferenceSize, Preprocessor};

pub struct FrameTranslator {
    backend: Box<dyn Backend>,
    size: InferenceSize,
    training_resolution: u32,
    strength: f32,
    pre: Preprocessor,
    rgb: Vec<u8>,
    translated: Vec<u8>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl FrameTranslator {
    pub fn new(backend: Box<dyn Backend>, size: InferenceSize, training_resolution: u32, strength: f32) -> Self {
        Self {
            backend,
            size,
            training_resolution,
            strength: strength.clamp(0.0, 1.0),
            pre: Preprocessor::default(),
            rgb: Vec::new(),
            translated: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The backend's notes since the last call (see [`Backend::take_notes`]).
    pub fn take_notes(&mut self) -> Vec<String> {
        self.backend.take_notes()
    }

    /// (width, height) of the tensor for a frame of this size.
    pub fn inference_size(&self, width: usize, height: usize) -> (usize, usize) {
        self.size.resolve(width, height, self.training_resolution)
    }

    /// Packed RGB of `frame` size -> translated packed RGB of the same size.
    pub fn translate_rgb(&mut self, rgb: &[u8], frame: (usize, usize)) -> Result<&[u8]> {
        let size = self.inference_size(frame.0, frame.1);
        self.pre.to_tensor(rgb, frame, size, &mut self.input);
        self.backend.run(&self.input, [1, 3, size.1, size.0], &mut self.output)?;
        self.pre.from_tensor(&self.output, size, frame, rgb, self.strength, &mut self.translated);
        Ok(&self.translated)
    }

    /// Translates `src` into `dst` (same format and size; they may be views of one buffer's copy).
    pub fn translate(&mut self, src: &FrameRef<'_>, dst: &mut FrameMut<'_>, yuv: YuvSpec) -> Result<()> {
        let mut rgb = std::mem::take(&mut self.rgb);
        src.to_rgb(&mut rgb, yuv);
        let result = self.translate_rgb(&rgb, (src.width, src.height)).map(|out| dst.write_rgb(out, yuv));
        self.rgb = rgb;
        result
    }

    /// Translates a frame where it lies: on the backend's device where it can, else on the CPU.
    pub fn translate_in_place(&mut self, frame: &mut FrameMut<'_>, yuv: YuvSpec) -> Result<()> {
        let size = self.inference_size(frame.width, frame.height);
        if let Some(result) = self.backend.translate_frame(frame, yuv, size, self.strength) {
            return result;
        }
        let mut rgb = std::mem::take(&mut self.rgb);
        frame.as_ref().to_rgb(&mut rgb, yuv);
        let result = self.translate_rgb(&rgb, (frame.width, frame.height)).map(|out| frame.write_rgb(out, yuv));
        self.rgb = rgb;
        result
    }
}
