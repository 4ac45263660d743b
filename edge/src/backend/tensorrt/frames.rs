//! Whole frames on the GPU, several in flight: frame N+1 is copied in (upload stream) while
//! frame N runs through the kernels and the engine (compute stream) and frame N-1 is copied out
//! (download stream). Each frame in flight has a slot of its own: its bytes in page-locked host
//! memory and on the device, and events around its GPU work. The engine's tensors are shared:
//! the compute stream runs one frame at a time. cudarc's event tracking (on once a context has
//! streams of its own) makes each stream wait for the last writer of what it reads.
//!
//! On an integrated GPU (a Jetson: one DRAM for both) the copies to and from device memory only
//! move bytes within the same memory, so there the slot's page-locked memory is mapped into the
//! GPU's address space and the kernels read and write it in place (see [`CopyPlan`]).
use std::collections::VecDeque;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, PinnedHostSlice};

use super::{TensorrtBackend, cuda};
use crate::backend::cuda::{FrameLayout, Kernels, Smoothing, SmoothingState};
use crate::frame::{FrameMut, FrameRef, YuvSpec};
use crate::smoothing::Step;
use crate::{Error, Result};

/// Which copies a frame takes besides into and out of its slot's page-locked memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyPlan {
    /// Page-locked memory to device memory, and back: a discrete GPU's kernels cannot read host
    /// memory at full speed; an integrated one's read the mapped page-locked memory directly.
    pub device_copies: bool,
}

impl CopyPlan {
    pub fn for_gpu(integrated: bool) -> Self {
        Self { device_copies: !integrated }
    }

    /// Bytes moved per frame of `frame_bytes`: in and out of the slot, and the device copies.
    pub fn bytes_per_frame(&self, frame_bytes: usize) -> u64 {
        let copies = if self.device_copies { 4 } else { 2 };
        (copies * frame_bytes) as u64
    }
}

/// The kernels, the copy streams and the frames' slots, made on the first frame.
pub(super) struct FramePath {
    pub(super) kernels: Kernels,
    plan: CopyPlan,
    upload: Arc<CudaStream>,
    download: Arc<CudaStream>,
    slots: Vec<Slot>,
    /// Slots holding submitted frames, oldest first.
    in_flight: VecDeque<usize>,
    /// Temporal smoothing's state: the compute stream post-processes frames in submission
    /// order, so one state serves every frame in flight.
    smoothing: Option<SmoothingState>,
}

/// One frame's place: where its planes lie in `staging`/`device`, and its GPU time.
struct Slot {
    layout: FrameLayout,
    plane_lens: [usize; 3],
    staging: PinnedHostSlice<u8>,
    /// The frame where the kernels see it: device memory, or `staging` itself mapped for the
    /// GPU (not owned then: given back with `leak` before `staging` is freed).
    device: Option<CudaSlice<u8>>,
    owns_device: bool,
    start: CudaEvent,
    end: CudaEvent,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.owns_device
            && let Some(mapped) = self.device.take()
        {
            mapped.leak();
        }
    }
}

impl FramePath {
    fn new(backend: &TensorrtBackend) -> Result<Self> {
        let kernels = Kernels::for_context(&backend.gpu.context)?;
        let stream = || backend.gpu.context.new_stream().map_err(cuda("creating a CUDA stream"));
        Ok(Self {
            kernels,
            plan: CopyPlan::for_gpu(backend.gpu.integrated),
            upload: stream()?,
            download: stream()?,
            slots: Vec::new(),
            in_flight: VecDeque::new(),
            smoothing: None,
        })
    }

    /// A slot not in flight, laid out for `frame`: an idle one reused, else a new one.
    fn free_slot(&mut self, backend: &TensorrtBackend, frame: &FrameRef<'_>, yuv: YuvSpec) -> Result<usize> {
        let mut layout = FrameLayout {
            format: frame.format,
            width: frame.width,
            height: frame.height,
            offsets: [0; 3],
            strides: frame.strides,
            yuv,
        };
        let mut plane_lens = [0; 3];
        let mut bytes = 0;
        for (i, plane) in frame.planes.iter().enumerate() {
            layout.offsets[i] = bytes;
            plane_lens[i] = plane.len();
            bytes += plane.len();
        }
        let free = (0..self.slots.len()).find(|i| !self.in_flight.contains(i));
        let index = match free {
            Some(i) if self.slots[i].staging.len() == bytes => {
                let slot = &mut self.slots[i];
                (slot.layout, slot.plane_lens) = (layout, plane_lens);
                i
            }
            _ => {
                let slot = Slot::new(backend, self.plan, layout, plane_lens, bytes)?;
                match free {
                    Some(i) => {
                        self.slots[i] = slot;
                        i
                    }
                    None => {
                        self.slots.push(slot);
                        self.slots.len() - 1
                    }
                }
            }
        };
        Ok(index)
    }
}

impl Slot {
    fn new(
        backend: &TensorrtBackend,
        plan: CopyPlan,
        layout: FrameLayout,
        plane_lens: [usize; 3],
        bytes: usize,
    ) -> Result<Self> {
        let context = &backend.gpu.context;
        // Page-locked: copies from and to it run at full bus speed, and asynchronously (plain,
        // not write-combined: the host reads the result back); mapped where the GPU reads it.
        let flags = if plan.device_copies { 0 } else { cudarc::driver::sys::CU_MEMHOSTALLOC_DEVICEMAP };
        // SAFETY: every byte is written from a frame before the GPU reads it.
        let mut staging = unsafe { context.alloc_pinned_with_flags::<u8>(bytes, flags) }.map_err(|source| {
            Error::Driver { what: format!("allocating {bytes} bytes of page-locked host memory"), source }
        })?;
        let device = if plan.device_copies {
            backend.gpu.stream.alloc_zeros::<u8>(bytes).map_err(|source| Error::Driver {
                what: format!("allocating {bytes} bytes on the GPU for a frame"),
                source,
            })?
        } else {
            let host = staging.as_mut_ptr().map_err(cuda("reading the page-locked memory's address"))?;
            let mut address = 0;
            // SAFETY: `host` is a live DEVICEMAP allocation of `bytes` bytes in this context.
            unsafe { cudarc::driver::sys::cuMemHostGetDevicePointer_v2(&mut address, host.cast(), 0) }
                .result()
                .map_err(cuda("mapping page-locked memory for the GPU"))?;
            // SAFETY: the mapping covers `bytes` bytes and lives as long as `staging`; Drop gives
            // the slice back with `leak` instead of freeing it as device memory.
            unsafe { backend.gpu.stream.upgrade_device_ptr::<u8>(address, bytes) }
        };
        let event = || context.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(cuda("creating a CUDA event"));
        Ok(Self {
            layout,
            plane_lens,
            staging,
            device: Some(device),
            owns_device: plan.device_copies,
            start: event()?,
            end: event()?,
        })
    }
}

impl TensorrtBackend {
    /// The frame path, made on first use; None (with a note, once) where NVRTC or the kernels
    /// are unusable: frames then take the CPU path.
    pub(super) fn frame_path(&mut self) -> Option<&mut FramePath> {
        if self.frames.is_none() {
            let made = FramePath::new(self);
            self.frames = Some(made.map_err(|e| {
                self.notes.push(format!("CUDA kernels unavailable ({e}): pre/post-processing runs on the CPU"));
            }));
        }
        self.frames.as_mut().and_then(|f| f.as_mut().ok())
    }

    /// Queues `frame` on the GPU: upload, pre-process kernel, engine, post-process kernel,
    /// download into its slot's staging memory. Returns without waiting.
    pub(super) fn submit_on_gpu(
        &mut self,
        frame: &FrameRef<'_>,
        yuv: YuvSpec,
        size: (usize, usize),
        strength: f32,
        smoothing: Step,
    ) -> Result<()> {
        let dims = [1, 3, size.1 as i64, size.0 as i64];
        let half = self.engine_for(dims)?;
        self.buffers([1, 3, size.1, size.0], half)?;
        let mut path = self.frames.take().expect("frame_path ran").expect("frame_path ran");
        let result = self.queue_frame(&mut path, frame, yuv, (size, strength, smoothing), half);
        self.frames = Some(Ok(path));
        result
    }

    fn queue_frame(
        &mut self,
        path: &mut FramePath,
        frame: &FrameRef<'_>,
        yuv: YuvSpec,
        (size, strength, smoothing): ((usize, usize), f32, Step),
        half: bool,
    ) -> Result<()> {
        let index = path.free_slot(self, frame, yuv)?;
        let slot = &mut path.slots[index];
        // Waits only for this slot's previous download, which `finish` already waited for.
        let host = slot.staging.as_mut_slice().map_err(cuda("waiting for the staging buffer"))?;
        for (i, plane) in frame.planes.iter().enumerate() {
            let start = slot.layout.offsets[i];
            host[start..start + plane.len()].copy_from_slice(plane);
        }
        let compute = self.gpu.stream.clone();
        let device = slot.device.as_mut().expect("a slot's frame lives until it is dropped");
        if path.plan.device_copies {
            slot.start.record(&path.upload).map_err(cuda("recording a CUDA event"))?;
            path.upload.memcpy_htod(&slot.staging, device).map_err(cuda("copying the frame to the GPU"))?;
        } else {
            slot.start.record(&compute).map_err(cuda("recording a CUDA event"))?;
        }

        let weight = match smoothing {
            Step::Off => {
                path.smoothing = None;
                None
            }
            Step::Restart => Some(None),
            Step::Blend(weight) => Some(Some(weight)),
        };
        let frame_size = (frame.width, frame.height);
        let fresh = weight.is_some() && path.smoothing.as_ref().is_none_or(|s| s.size() != frame_size);
        if fresh {
            path.smoothing = Some(SmoothingState::new(&compute, frame.width, frame.height).map_err(Error::Kernels)?);
        }
        let values = 3 * size.0 * size.1;
        let kernel = Error::Kernels;
        let buffers = self.buffers.as_mut().expect("allocated by the caller");
        // SAFETY (transmutes): the byte buffers were sized for `values` elements of this type.
        if half {
            let mut tensor = unsafe { buffers.input.transmute_mut::<u16>(values) }.expect("sized for the tensor");
            path.kernels.preprocess(&compute, &device.as_view(), &slot.layout, size, &mut tensor).map_err(kernel)?;
        } else {
            let mut tensor = unsafe { buffers.input.transmute_mut::<f32>(values) }.expect("sized for the tensor");
            path.kernels.preprocess(&compute, &device.as_view(), &slot.layout, size, &mut tensor).map_err(kernel)?;
        }
        self.enqueue([1, 3, size.1 as i64, size.0 as i64])?;
        let buffers = self.buffers.as_ref().expect("allocated by the caller");
        let mut view = device.as_view_mut();
        let smoothing = weight.map(|weight| Smoothing {
            state: path.smoothing.as_mut().expect("made above"),
            // A state made just now has no past.
            weight: weight.filter(|_| !fresh),
        });
        if half {
            let tensor = unsafe { buffers.output.transmute::<u16>(values) }.expect("sized for the tensor");
            path.kernels
                .postprocess(&compute, &tensor, size, &mut view, &slot.layout, strength, smoothing)
                .map_err(kernel)?;
        } else {
            let tensor = unsafe { buffers.output.transmute::<f32>(values) }.expect("sized for the tensor");
            path.kernels
                .postprocess(&compute, &tensor, size, &mut view, &slot.layout, strength, smoothing)
                .map_err(kernel)?;
        }
        if path.plan.device_copies {
            path.download.memcpy_dtoh(device, &mut slot.staging).map_err(cuda("copying the frame back"))?;
            slot.end.record(&path.download).map_err(cuda("recording a CUDA event"))?;
        } else {
            slot.end.record(&compute).map_err(cuda("recording a CUDA event"))?;
        }
        self.copied_bytes = Some(path.plan.bytes_per_frame(slot.staging.len()));
        path.in_flight.push_back(index);
        Ok(())
    }

    /// Waits for the oldest submitted frame and writes it into `frame`.
    pub(super) fn finish_on_gpu(&mut self, frame: &mut FrameMut<'_>) -> Result<()> {
        let path = self.frames.as_mut().and_then(|f| f.as_mut().ok());
        let Some(index) = path.as_ref().and_then(|p| p.in_flight.front().copied()) else {
            return Err(Error::Invalid("no frame was submitted to the GPU".into()));
        };
        let path = path.expect("has a frame in flight");
        path.in_flight.pop_front();
        let slot = &path.slots[index];
        let lens = [frame.planes[0].len(), frame.planes[1].len(), frame.planes[2].len()];
        if (frame.format, frame.width, frame.height, lens)
            != (slot.layout.format, slot.layout.width, slot.layout.height, slot.plane_lens)
        {
            return Err(Error::Invalid(format!(
                "the frame to finish ({:?} {}x{}) is not the one submitted ({:?} {}x{})",
                frame.format, frame.width, frame.height, slot.layout.format, slot.layout.width, slot.layout.height
            )));
        }
        // Waits for the frame's last GPU work (the download, or the kernel writing the mapped
        // memory, which the staging memory's own event does not see): errors of any queued GPU
        // work surface here.
        slot.end.synchronize().map_err(cuda("running the engine"))?;
        let host = slot.staging.as_slice().map_err(cuda("running the engine"))?;
        for (i, plane) in frame.planes.iter_mut().enumerate() {
            let start = slot.layout.offsets[i];
            plane.copy_from_slice(&host[start..start + plane.len()]);
        }
        self.device_ms = slot.start.elapsed_ms(&slot.end).ok().map(f64::from);
        Ok(())
    }

    /// Lets the GPU finish what was queued and forgets it (a flush).
    pub(super) fn discard_on_gpu(&mut self) {
        if let Some(Ok(path)) = &mut self.frames {
            for stream in [&path.upload, &self.gpu.stream, &path.download] {
                let _ = stream.synchronize();
            }
            path.in_flight.clear();
            // The discarded frames went through it: the next frame restarts it anyway.
            path.smoothing = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integrated_gpu_reads_and_writes_frames_in_place() {
        let frame = 1920 * 1080 * 3 / 2; // an NV12 1080p frame
        let discrete = CopyPlan::for_gpu(false);
        assert!(discrete.device_copies);
        // Into page-locked memory, to the device, back, out.
        assert_eq!(discrete.bytes_per_frame(frame), 4 * frame as u64);
        let jetson = CopyPlan::for_gpu(true);
        assert!(!jetson.device_copies);
        assert_eq!(jetson.bytes_per_frame(frame), 2 * frame as u64);
    }
}
