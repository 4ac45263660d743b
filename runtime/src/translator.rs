//! One video frame through the generator: frame -> RGB -> tensor -> backend -> RGB -> frame.
//! The GStreamer element, the benchmark and the tests all go through this. Frames may be in
//! flight: `submit` starts one, `finish` writes the oldest back, temporally smoothed
//! ([`crate::smoothing`]) in the order submitted.
use std::collections::VecDeque;

use crate::backend::Backend;
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::preprocess::{InferenceSize, Preprocessor};
use crate::smoothing::{self, Smoother, Step};
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
    /// The temporal smoothing of the frames submitted from now on.
    smoothing: f64,
    /// The next frame submitted starts the smoothing afresh (after a reset).
    restart: bool,
    /// The CPU path's smoothing, applied by `finish`.
    smoother: Smoother,
    /// Frame size of the smoothing state on the backend's device; None: it has none.
    device_smoothing: Option<(usize, usize)>,
}

/// Where a submitted frame's translation is.
enum Pending {
    /// On the backend's device, until `Backend::finish_frame`.
    Device,
    /// Done on the CPU: packed RGB, written into the frame by `finish`, smoothed first there
    /// (in submission order) where `smoothing` > 0: with the frame's `input` RGB, after a
    /// reset where `restart`.
    Host { rgb: Vec<u8>, yuv: YuvSpec, smoothing: f64, restart: bool, input: Vec<u8> },
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
            smoothing: 0.0,
            restart: false,
            smoother: Smoother::new(0.0).expect("0 is in range"),
            device_smoothing: None,
        }
    }

    /// Temporal smoothing of the frames submitted from now on ([`crate::smoothing`]; 0, the
    /// default: none, each frame on its own). [`Self::translate`] never smooths.
    pub fn set_temporal_smoothing(&mut self, smoothing: f64) -> Result<()> {
        self.smoothing = smoothing::check(smoothing)?;
        Ok(())
    }

    pub fn temporal_smoothing(&self) -> f64 {
        self.smoothing
    }

    /// The next frame submitted passes unsmoothed and starts the smoothing afresh: for a cut
    /// (a discontinuity, new caps). Frames already submitted are smoothed as before.
    pub fn reset_smoothing(&mut self) {
        self.restart = true;
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

    /// Translates `src` into `dst` (same format and size; they may be views of one buffer's
    /// copy): the frame on its own, without temporal smoothing.
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
        let frame_size = (frame.width, frame.height);
        let step = if self.smoothing == 0.0 {
            Step::Off
        } else if self.restart || self.device_smoothing != Some(frame_size) {
            Step::Restart
        } else {
            Step::Blend(smoothing::weight(self.smoothing))
        };
        if let Some(result) = self.backend.submit_frame(frame, yuv, size, self.strength, step) {
            result?;
            self.device_smoothing = (step != Step::Off).then_some(frame_size);
            self.restart = false;
            self.pending.push_back(Pending::Device);
            return Ok(());
        }
        // Buffers that went out with a smoothed frame come back from `spare`.
        if self.rgb.capacity() == 0 {
            self.rgb = self.spare.pop().unwrap_or_default();
        }
        let mut rgb = std::mem::take(&mut self.rgb);
        frame.to_rgb(&mut rgb, yuv);
        if self.translated.capacity() == 0 {
            self.translated = self.spare.pop().unwrap_or_default();
        }
        let result = self.translate_rgb(&rgb, frame_size).map(|_| ());
        // Smoothing needs the input at `finish`: it goes with the translation.
        let input = if self.smoothing > 0.0 {
            std::mem::replace(&mut rgb, self.spare.pop().unwrap_or_default())
        } else {
            Vec::new()
        };
        self.rgb = rgb;
        result?;
        self.pending.push_back(Pending::Host {
            rgb: std::mem::take(&mut self.translated),
            yuv,
            smoothing: self.smoothing,
            restart: std::mem::take(&mut self.restart),
            input,
        });
        Ok(())
    }

    /// Writes the oldest submitted frame's translation into `frame`, which must be that frame
    /// with its pixels unchanged (blending and padding read them).
    pub fn finish(&mut self, frame: &mut FrameMut<'_>) -> Result<()> {
        match self.pending.pop_front() {
            None => Err(Error::Invalid("no frame was submitted".into())),
            Some(Pending::Device) => self.backend.finish_frame(frame),
            Some(Pending::Host { mut rgb, yuv, smoothing, restart, input }) => {
                if rgb.len() != frame.width * frame.height * 3 {
                    return Err(Error::Invalid(format!(
                        "the frame to finish ({}x{}) is not the size submitted",
                        frame.width, frame.height
                    )));
                }
                self.smoother.set_smoothing(smoothing)?;
                if restart {
                    self.smoother.reset();
                }
                if smoothing > 0.0 {
                    self.smoother.apply(&input, &mut rgb, frame.width, frame.height);
                }
                frame.write_rgb(&rgb, yuv);
                self.spare.push(rgb);
                if input.capacity() > 0 {
                    self.spare.push(input);
                }
                Ok(())
            }
        }
    }

    /// Frames submitted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Forgets the frames in flight (a flush: their buffers are gone), and the smoothing's
    /// past: the next frame starts it afresh.
    pub fn discard(&mut self) {
        if self.pending.iter().any(|p| matches!(p, Pending::Device)) {
            self.backend.discard_frames();
        }
        for pending in self.pending.drain(..) {
            if let Pending::Host { rgb, input, .. } = pending {
                self.spare.push(rgb);
                if input.capacity() > 0 {
                    self.spare.push(input);
                }
            }
        }
        self.restart = true;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::frame::{Frame, PixelFormat};

    /// A device backend that takes every frame and records the smoothing it was told.
    struct Device(Arc<Mutex<Vec<Step>>>);

    impl Backend for Device {
        fn describe(&self) -> String {
            "device".into()
        }

        fn run(&mut self, _: &[f32], _: [usize; 4], _: &mut Vec<f32>) -> Result<()> {
            unreachable!("frames go to the device")
        }

        fn submit_frame(
            &mut self,
            _: &FrameRef<'_>,
            _: YuvSpec,
            _: (usize, usize),
            _: f32,
            smoothing: Step,
        ) -> Option<Result<()>> {
            self.0.lock().unwrap().push(smoothing);
            Some(Ok(()))
        }

        fn finish_frame(&mut self, _: &mut FrameMut<'_>) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_device_is_told_when_the_smoothing_restarts() {
        let steps = Arc::new(Mutex::new(Vec::new()));
        let mut t = FrameTranslator::new(Box::new(Device(steps.clone())), InferenceSize::Short(8), 8, 1.0);
        let (small, large) = (Frame::new(PixelFormat::Rgb, 8, 8), Frame::new(PixelFormat::Rgb, 12, 8));
        let yuv = YuvSpec::default();
        let submit = |t: &mut FrameTranslator, frame: &Frame| t.submit(&frame.as_ref(), yuv).unwrap();
        submit(&mut t, &small);
        t.set_temporal_smoothing(0.5).unwrap();
        submit(&mut t, &small);
        submit(&mut t, &small);
        t.reset_smoothing();
        submit(&mut t, &small);
        submit(&mut t, &large);
        submit(&mut t, &large);
        t.discard();
        submit(&mut t, &large);
        t.set_temporal_smoothing(0.0).unwrap();
        submit(&mut t, &large);
        t.set_temporal_smoothing(0.5).unwrap();
        submit(&mut t, &large);
        submit(&mut t, &large);
        let (blend, off, restart) = (Step::Blend(smoothing::weight(0.5)), Step::Off, Step::Restart);
        let expected = [off, restart, blend, restart, restart, blend, restart, off, restart, blend];
        assert_eq!(*steps.lock().unwrap(), expected);
        assert!(t.set_temporal_smoothing(1.5).unwrap_err().to_string().contains("between 0 and 1"));
        assert_eq!(t.temporal_smoothing(), 0.5);
    }
}
