//! One video frame through the generator: frame -> RGB -> tensor -> backend -> RGB -> frame.
//! The GStreamer element, the benchmark and the tests all go through this. Frames may be in
//! flight: `submit` starts one, `finish` writes the oldest back.
use std::collections::VecDeque;

use crate::backend::Backend;
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::preprocess::{InferenceSize, Preprocessor};
use crate::{Error, Result};

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
    pending: VecDeque<Pending>,
    /// Emptied `Pending::Host` buffers, for the next frames.
    spare: Vec<Vec<u8>>,
}

/// Where a submitted frame's translation is.
enum Pending {
    /// On the backend's device, until `Backend::finish_frame`.
    Device,
    /// Done on the CPU: packed RGB, written into the frame by `finish`.
    Host(Vec<u8>, YuvSpec),
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
            pending: VecDeque::new(),
            spare: Vec::new(),
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

    /// Starts translating `frame`: queued on the backend's device where it pre- and
    /// post-processes there (TensorRT), else translated on the CPU now. [`Self::finish`] writes
    /// the results back, oldest first.
    pub fn submit(&mut self, frame: &FrameRef<'_>, yuv: YuvSpec) -> Result<()> {
        let size = self.inference_size(frame.width, frame.height);
        if let Some(result) = self.backend.submit_frame(frame, yuv, size, self.strength) {
            result?;
            self.pending.push_back(Pending::Device);
            return Ok(());
        }
        let mut rgb = std::mem::take(&mut self.rgb);
        frame.to_rgb(&mut rgb, yuv);
        if self.translated.capacity() == 0 {
            self.translated = self.spare.pop().unwrap_or_default();
        }
        let result = self.translate_rgb(&rgb, (frame.width, frame.height)).map(|_| ());
        self.rgb = rgb;
        result?;
        self.pending.push_back(Pending::Host(std::mem::take(&mut self.translated), yuv));
        Ok(())
    }

    /// Writes the oldest submitted frame's translation into `frame`, which must be that frame
    /// with its pixels unchanged (blending and padding read them).
    pub fn finish(&mut self, frame: &mut FrameMut<'_>) -> Result<()> {
        match self.pending.pop_front() {
            None => Err(Error::Invalid("no frame was submitted".into())),
            Some(Pending::Device) => self.backend.finish_frame(frame),
            Some(Pending::Host(rgb, yuv)) => {
                if rgb.len() != frame.width * frame.height * 3 {
                    return Err(Error::Invalid(format!(
                        "the frame to finish ({}x{}) is not the size submitted",
                        frame.width, frame.height
                    )));
                }
                frame.write_rgb(&rgb, yuv);
                self.spare.push(rgb);
                Ok(())
            }
        }
    }

    /// Frames submitted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Forgets the frames in flight (a flush: their buffers are gone).
    pub fn discard(&mut self) {
        if self.pending.iter().any(|p| matches!(p, Pending::Device)) {
            self.backend.discard_frames();
        }
        for pending in self.pending.drain(..) {
            if let Pending::Host(rgb, _) = pending {
                self.spare.push(rgb);
            }
        }
    }
}
