//! What runs a generator: on `[N,3,H,W]` float tensors, or (a device backend) on whole frames.
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::smoothing::Step;
use crate::{Error, Result};

/// A generator ready to run. Input and output are `[N,3,H,W]` float tensors in [-1,1].
pub trait Backend: Send {
    /// Short description for logs and statistics (`cpu (ONNX Runtime 1.31.1, 2 threads)`).
    fn describe(&self) -> String;

    /// Another runner of the same loaded model that may run at the same time as this one, with
    /// buffers of its own (ONNX Runtime: the session, its own bound tensors). None: the backend
    /// runs one batch at a time.
    fn fork(&self) -> Option<Result<Box<dyn Backend>>> {
        None
    }

    /// Translates `input` of `shape` into `output` (resized to the same length).
    fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()>;

    /// Starts translating `frame` where the backend pre- and post-processes on its own device
    /// (TensorRT: copied to the GPU, CUDA kernels around the engine, all queued) and returns
    /// without waiting; `finish_frame` gives the results, oldest first. The translation is
    /// blended with the frame at `strength`, then temporally smoothed as `smoothing` says (state
    /// on the device, in submission order: [`crate::smoothing`]). None: the caller's CPU path
    /// does pre- and post-processing, calling `run`.
    fn submit_frame(
        &mut self,
        _frame: &FrameRef<'_>,
        _yuv: YuvSpec,
        _size: (usize, usize),
        _strength: f32,
        _smoothing: Step,
    ) -> Option<Result<()>> {
        None
    }

    /// Writes the oldest submitted frame's translation into `frame`: the frame submitted, its
    /// pixels unchanged since.
    fn finish_frame(&mut self, _frame: &mut FrameMut<'_>) -> Result<()> {
        Err(Error::Invalid(format!("{} takes no frames of its own", self.describe())))
    }

    /// Frames worth keeping in flight: 2 where one frame's copies overlap another's compute.
    fn frames_in_flight(&self) -> usize {
        1
    }

    /// Forgets the submitted frames (a flush), once the device is done with them.
    fn discard_frames(&mut self) {}

    /// The last frame's time on the device (upload to download), where the backend measures one.
    fn device_ms(&self) -> Option<f64> {
        None
    }

    /// Bytes the last frame was copied through on its way (into page-locked memory, to the
    /// device and back), where the backend has such copies.
    fn copied_bytes(&self) -> Option<u64> {
        None
    }

    /// Lines for a person that came up since the last call (an engine built, and why).
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Frames of several streams worth running as one batch (`max_batch` 0 in
    /// [`crate::batch::BatchOptions`]): 1 where a batch runs no faster than its frames one by one.
    fn batch_gain(&self) -> usize {
        1
    }

    /// Frames in the last inference, where this stream's frames are batched with other streams'
    /// ([`crate::batch`]).
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// Streams using the one loaded model, where it is shared ([`crate::batch`]).
    fn shared_by(&self) -> Option<usize> {
        None
    }
}
