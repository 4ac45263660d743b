//! The element messages `cyclegan` posts on the bus, as types: what the element writes and what
//! `cyclegan-edge run` (or any application) reads are the same fields by construction.
use gstreamer as gst;
use gstreamer::glib::value::{FromValue, ValueTypeChecker};

/// Name of the element message carrying [`Stats`].
pub const STATS_MESSAGE: &str = "cyclegan-stats";

/// Name of the element message carrying a line for a person (field `text`): the backend `auto`
/// chose and why, a TensorRT engine built or taken from the cache.
pub const NOTE_MESSAGE: &str = "cyclegan-note";

/// Statistics of the frames since the previous message, about once per `stats-interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Frames in the window.
    pub frames: u64,
    pub fps: f64,
    /// Latency from a frame's arrival to its departure, percentiles over the window.
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub inference_width: u32,
    pub inference_height: u32,
    pub frames_in_flight: u32,
    /// The backend, described (`cpu (ONNX Runtime ...)`, `tensorrt ...`).
    pub backend: String,
    /// The last frame's time on the GPU by CUDA events, where the backend has one.
    pub device_ms: Option<f64>,
    /// Bytes the last frame was copied through (TensorRT: 4 frames' worth on a discrete GPU, 2
    /// on a Jetson, whose kernels read and write it in place).
    pub copied_bytes: Option<u64>,
    /// Mean frames per inference over the window, where the model is shared: above 1 when this
    /// stream's frames ran in batches with other streams' ones.
    pub batch_mean: Option<f64>,
    /// Streams sharing the loaded model, this one included, where it is shared.
    pub shared_by: Option<u32>,
}

const FRAMES: &str = "frames";
const FPS: &str = "fps";
const P50: &str = "latency-p50-ms";
const P95: &str = "latency-p95-ms";
const WIDTH: &str = "inference-width";
const HEIGHT: &str = "inference-height";
const IN_FLIGHT: &str = "frames-in-flight";
const BACKEND: &str = "backend";
const DEVICE_MS: &str = "device-ms";
const COPIED: &str = "copied-bytes";
const BATCH: &str = "batch-mean";
const SHARED_BY: &str = "shared-by";

impl From<&Stats> for gst::Structure {
    fn from(s: &Stats) -> Self {
        let mut b = gst::Structure::builder(STATS_MESSAGE)
            .field(FRAMES, s.frames)
            .field(FPS, s.fps)
            .field(P50, s.latency_p50_ms)
            .field(P95, s.latency_p95_ms)
            .field(WIDTH, s.inference_width)
            .field(HEIGHT, s.inference_height)
            .field(IN_FLIGHT, s.frames_in_flight)
            .field(BACKEND, s.backend.as_str());
        if let Some(ms) = s.device_ms {
            b = b.field(DEVICE_MS, ms);
        }
        if let Some(bytes) = s.copied_bytes {
            b = b.field(COPIED, bytes);
        }
        if let Some(mean) = s.batch_mean {
            b = b.field(BATCH, mean);
        }
        if let Some(n) = s.shared_by {
            b = b.field(SHARED_BY, n);
        }
        b.build()
    }
}

/// Why a structure is not a [`Stats`] message.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("a `{0}` structure is not a `{STATS_MESSAGE}` message")]
    Name(String),
    #[error("`{STATS_MESSAGE}` field `{field}`")]
    Field {
        field: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn field<'a, T>(s: &'a gst::StructureRef, name: &'static str) -> Result<T, StatsError>
where
    T: FromValue<'a>,
    <T::Checker as ValueTypeChecker>::Error: std::error::Error + Send + Sync + 'static,
{
    s.get::<T>(name).map_err(|e| StatsError::Field { field: name, source: Box::new(e) })
}

fn optional<'a, T>(s: &'a gst::StructureRef, name: &'static str) -> Result<Option<T>, StatsError>
where
    T: FromValue<'a>,
    <T::Checker as ValueTypeChecker>::Error: std::error::Error + Send + Sync + 'static,
{
    s.get_optional::<T>(name).map_err(|e| StatsError::Field { field: name, source: Box::new(e) })
}

impl TryFrom<&gst::StructureRef> for Stats {
    type Error = StatsError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, StatsError> {
        if s.name() != STATS_MESSAGE {
            return Err(StatsError::Name(s.name().to_string()));
        }
        Ok(Self {
            frames: field(s, FRAMES)?,
            fps: field(s, FPS)?,
            latency_p50_ms: field(s, P50)?,
            latency_p95_ms: field(s, P95)?,
            inference_width: field(s, WIDTH)?,
            inference_height: field(s, HEIGHT)?,
            frames_in_flight: field(s, IN_FLIGHT)?,
            backend: field(s, BACKEND)?,
            device_ms: optional(s, DEVICE_MS)?,
            copied_bytes: optional(s, COPIED)?,
            batch_mean: optional(s, BATCH)?,
            shared_by: optional(s, SHARED_BY)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(device_ms: Option<f64>, copied_bytes: Option<u64>, shared: Option<(f64, u32)>) -> Stats {
        Stats {
            frames: 29,
            fps: 29.5,
            latency_p50_ms: 12.25,
            latency_p95_ms: 20.5,
            inference_width: 456,
            inference_height: 256,
            frames_in_flight: 2,
            backend: "cpu (ONNX Runtime)".into(),
            device_ms,
            copied_bytes,
            batch_mean: shared.map(|s| s.0),
            shared_by: shared.map(|s| s.1),
        }
    }

    #[test]
    fn stats_round_trip_through_a_structure() {
        gst::init().unwrap();
        for s in [stats(None, None, None), stats(Some(3.5), Some(6_220_800), Some((2.5, 3)))] {
            let structure = gst::Structure::from(&s);
            assert_eq!(structure.name(), STATS_MESSAGE);
            assert_eq!(Stats::try_from(structure.as_ref()).unwrap(), s);
        }
    }

    #[test]
    fn other_structures_are_named_errors() {
        gst::init().unwrap();
        let note = gst::Structure::builder(NOTE_MESSAGE).field("text", "hello").build();
        assert!(Stats::try_from(note.as_ref()).unwrap_err().to_string().contains("cyclegan-note"));
        let mut s = gst::Structure::from(&stats(None, None, None));
        s.remove_field(FPS);
        let err = Stats::try_from(s.as_ref()).unwrap_err();
        assert_eq!(err.to_string(), "`cyclegan-stats` field `fps`");
        s.set(FPS, "fast");
        assert!(Stats::try_from(s.as_ref()).is_err());
    }
}
