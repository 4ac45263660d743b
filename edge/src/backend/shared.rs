//! Models shared by the streams of one process: `cyclegan` elements that open the same model
//! bytes with the same backend settings and batching get one loaded backend
//! ([`SharedModel`]), whose worker runs their frames in batches.
//!
//! A process-wide registry rather than GStreamer's context mechanism: a context is negotiated
//! within one pipeline (queries up the bins, or the application's bus handler), but `run` gives
//! each stream a pipeline of its own, so that one camera's EOS, error or reconnect never
//! touches the others, and an application may run several pipelines too. The registry needs
//! nothing from the application, and holds its models weakly: a model is freed with the last
//! stream using it.
use std::sync::{Arc, LazyLock, Mutex, Weak};

use cyclegan_runtime::batch::{BatchOptions, SharedModel};

use super::tensorrt::sha256_hex;
use super::{BackendKind, BackendOptions, Opened};
use crate::Result;
use crate::model::Model;

/// What makes two streams' models one: the model's bytes and every setting it is opened with.
fn key(kind: BackendKind, model: &Model, options: &BackendOptions, batch: BatchOptions) -> String {
    let mut options = options.clone();
    // Where an element's notes go is not a property of the model.
    options.tensorrt.notify = None;
    format!("{} {kind} {options:?} {batch:?}", sha256_hex(&model.bytes))
}

/// Each shared model alive, by its key.
type Registry = Vec<(String, Weak<SharedModel>)>;

static MODELS: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Opens `model` for one more stream: a handle on the model another stream opened with the same
/// settings, or a newly opened one. A TensorRT backend is not shared (each stream keeps its
/// own, with the device's pre- and post-processing); the note says so.
pub fn open(kind: BackendKind, model: &Model, options: &BackendOptions, batch: BatchOptions) -> Result<Opened> {
    let key = key(kind, model, options, batch);
    // Held while a backend opens, so that streams starting together open it once.
    let mut models = MODELS.lock().unwrap();
    models.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(shared) = models.iter().find(|(k, _)| *k == key).and_then(|(_, weak)| weak.upgrade()) {
        // Only the CPU's backends are shared (below).
        return Ok(Opened { backend: Box::new(shared.stream()), note: None, kind: BackendKind::Cpu });
    }
    let mut options = options.clone();
    if batch.concurrent > 1 && options.threads == 0 {
        // The cores split between the batches running at once: ONNX Runtime runs its threads for
        // each, and more threads than cores only take turns.
        options.threads = (cores() / batch.concurrent).max(1);
    }
    let opened = super::open(kind, model, &options)?;
    if opened.kind == BackendKind::Tensorrt {
        let note = "TensorRT engines are not shared between streams yet: this stream has an engine of its own";
        let note = Some(opened.note.map_or_else(|| note.to_string(), |n| format!("{n}; {note}")));
        return Ok(Opened { note, ..opened });
    }
    let shared = SharedModel::start(opened.backend, batch)?;
    models.push((key, Arc::downgrade(&shared)));
    Ok(Opened { backend: Box::new(shared.stream()), note: opened.note, kind: opened.kind })
}

/// `concurrent_batches` 0 for `streams` streams sharing a model: a batch at a time for each, up to
/// the CPU cores (a lone stream keeps every core for its frames).
pub fn auto_concurrent_batches(streams: usize) -> u32 {
    streams.clamp(1, cores()) as u32
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The shared models loaded now, each with the streams using it.
pub fn loaded() -> Vec<Arc<SharedModel>> {
    MODELS.lock().unwrap().iter().filter_map(|(_, weak)| weak.upgrade()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_with_one_model_and_settings_share_it_until_the_last_goes() {
        let model = Model::bundled().unwrap();
        let options = BackendOptions { threads: 3, ..BackendOptions::default() };
        let batch = BatchOptions::default();
        let count = || loaded().iter().filter(|m| m.describe().contains("3 threads")).count();
        let a = open(BackendKind::Cpu, &model, &options, batch).unwrap();
        let b = open(BackendKind::Cpu, &model, &options, batch).unwrap();
        assert_eq!((a.backend.shared_by(), count()), (Some(2), 1));
        // Other batching, or another model: another shared model.
        let c = open(BackendKind::Cpu, &model, &options, BatchOptions { max_batch: 2, ..batch }).unwrap();
        assert_eq!((c.backend.shared_by(), count()), (Some(1), 2));
        drop((a, b, c));
        assert_eq!(count(), 0);
    }
}
