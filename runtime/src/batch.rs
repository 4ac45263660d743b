//! One loaded generator serving several streams: each stream gets a [`Backend`] handle
//! ([`SharedModel::stream`]), and frames of the same inference size that arrive within a window
//! of each other run as one batch on a worker thread that owns the real backend. Several workers,
//! each with a fork of the backend ([`Backend::fork`]), run batches at once.
//!
//! The window starts when the oldest waiting frame arrived and is never extended for a stream
//! that is late: a stalled or slow stream adds at most the window to the others' latency. A
//! stream's frames are answered in the order it sent them (each handle waits for its own).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::{Error, Result, chain};

/// How frames of several streams are gathered into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchOptions {
    /// How long the oldest waiting frame waits for others of its size; zero: no batching, each
    /// frame runs on its own.
    pub window: Duration,
    /// Frames in one batch at most; 0: the backend's choice ([`Backend::batch_gain`]).
    pub max_batch: usize,
    /// Batches run at once, each by a worker with its own fork of the backend; 1 where the
    /// backend has no forks.
    pub concurrent: usize,
}

/// Batching window unless set: well under a frame interval (33 ms at 30 fps).
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(4);
impl Default for BatchOptions {
    fn default() -> Self {
        Self { window: DEFAULT_WINDOW, max_batch: 0, concurrent: 1 }
    }
}

impl BatchOptions {
    /// The batch size frames are gathered up to on `backend`: 1 when the window is zero.
    fn effective_max(&self, backend: &dyn Backend) -> usize {
        match (self.window.is_zero(), self.max_batch) {
            (true, _) => 1,
            (false, 0) => backend.batch_gain().max(1),
            (false, n) => n,
        }
    }
}

/// A generator loaded once, run by worker threads for every stream holding a handle. The
/// workers stop when the last handle and this are dropped.
pub struct SharedModel {
    queue: Arc<Queue>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    description: String,
    options: BatchOptions,
    streams: AtomicUsize,
    /// `batches[n - 1]`: batches of n frames run so far.
    batches: Arc<Mutex<Vec<u64>>>,
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    arrived: Condvar,
}

#[derive(Default)]
struct Waiting {
    requests: VecDeque<Request>,
    closed: bool,
}

/// One stream's tensor, waiting for its batch.
struct Request {
    shape: [usize; 4],
    input: Vec<f32>,
    /// Where its translation goes: the stream's buffer, filled and sent back (no allocation).
    output: Vec<f32>,
    arrived: Instant,
    reply: SyncSender<Result<Done>>,
}

/// A request answered: its input buffer back (for the next frame) and its translation.
struct Done {
    input: Vec<f32>,
    output: Vec<f32>,
    batch: usize,
    device_ms: Option<f64>,
    notes: Vec<String>,
}

impl SharedModel {
    /// Starts the workers that run `backend` (and its forks) for every stream.
    pub fn start(backend: Box<dyn Backend>, options: BatchOptions) -> Result<Arc<Self>> {
        let queue = Arc::new(Queue::default());
        let max = options.effective_max(backend.as_ref());
        let mut runners = vec![backend];
        while runners.len() < options.concurrent {
            match runners[0].fork() {
                Some(fork) => runners.push(fork?),
                None => break,
            }
        }
        let options = BatchOptions { max_batch: max, concurrent: runners.len(), ..options };
        let description = match runners.len() {
            1 => runners[0].describe(),
            n => format!("{}, {n} batches at once", runners[0].describe()),
        };
        let batches = Arc::new(Mutex::new(vec![0; max]));
        let workers = runners
            .into_iter()
            .enumerate()
            .map(|(i, backend)| {
                let (queue, batches) = (queue.clone(), batches.clone());
                std::thread::Builder::new()
                    .name(format!("cyclegan-batch-{i}"))
                    .spawn(move || work(&queue, backend, options, &batches))
                    .map_err(|e| Error::Invalid(format!("starting a batching thread: {e}")))
            })
            .collect::<Result<Vec<_>>>();
        let model = Arc::new(Self {
            queue,
            workers: Mutex::new(Vec::new()),
            description,
            options,
            streams: AtomicUsize::new(0),
            batches,
        });
        // Dropped on an error, the model stops the workers already started.
        *model.workers.lock().unwrap() = workers?;
        Ok(model)
    }

    /// A backend for one more stream.
    pub fn stream(self: &Arc<Self>) -> StreamBackend {
        self.streams.fetch_add(1, Ordering::AcqRel);
        let (reply, answers) = sync_channel(1);
        StreamBackend {
            shared: self.clone(),
            reply,
            answers,
            spare: Vec::new(),
            spare_output: Vec::new(),
            batch: None,
            device_ms: None,
            notes: Vec::new(),
        }
    }

    /// Streams holding a handle now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Acquire)
    }

    /// The options it runs with (`max_batch` resolved).
    pub fn options(&self) -> BatchOptions {
        self.options
    }

    /// The backend's own description.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// Batches run so far by size: element `n - 1` counts the batches of `n` frames.
    pub fn batch_sizes(&self) -> Vec<u64> {
        self.batches.lock().unwrap().clone()
    }
}

impl Drop for SharedModel {
    fn drop(&mut self) {
        self.queue.waiting.lock().unwrap().closed = true;
        self.queue.arrived.notify_all();
        for worker in self.workers.lock().unwrap().drain(..) {
            let _ = worker.join();
        }
    }
}

/// The worker: gathers a batch, runs it, answers each request, until closed and empty.
fn work(queue: &Queue, mut backend: Box<dyn Backend>, options: BatchOptions, batches: &Mutex<Vec<u64>>) {
    let max = options.max_batch;
    let (mut input, mut output) = (Vec::new(), Vec::new());
    while let Some(mut batch) = gather(queue, options.window, max) {
        let frames: usize = batch.iter().map(|r| r.shape[0]).sum();
        let [_, c, h, w] = batch[0].shape;
        let single = batch.len() == 1;
        let result = if let [one] = batch.as_mut_slice() {
            // Straight into the stream's own buffer: no copy.
            backend.run(&one.input, one.shape, &mut one.output)
        } else {
            input.clear();
            batch.iter().for_each(|r| input.extend_from_slice(&r.input));
            backend.run(&input, [frames, c, h, w], &mut output)
        };
        batches.lock().unwrap()[(frames - 1).min(max - 1)] += 1;
        let device_ms = backend.device_ms();
        let mut notes = backend.take_notes();
        match result {
            Ok(()) => {
                let mut offset = 0;
                for mut request in batch {
                    let len = request.input.len();
                    if !single {
                        request.output.clear();
                        request.output.extend_from_slice(&output[offset..offset + len]);
                    }
                    let done = Done {
                        output: request.output,
                        input: request.input,
                        batch: frames,
                        device_ms,
                        // A backend's notes (an engine built) are said once, to the oldest stream.
                        notes: std::mem::take(&mut notes),
                    };
                    offset += len;
                    let _ = request.reply.send(Ok(done));
                }
            }
            Err(e) => {
                let reason = chain(&e);
                for request in batch {
                    let _ = request.reply.send(Err(Error::Shared { frames, reason: reason.clone() }));
                }
            }
        }
    }
}

/// Waits for the next batch: the oldest request and those of its shape that arrive within the
/// window after it, up to `max` frames, in arrival order. None: closed with nothing waiting.
fn gather(queue: &Queue, window: Duration, max: usize) -> Option<Vec<Request>> {
    let mut waiting = queue.waiting.lock().unwrap();
    loop {
        let Some(oldest) = waiting.requests.front() else {
            if waiting.closed {
                return None;
            }
            waiting = queue.arrived.wait(waiting).unwrap();
            continue;
        };
        let (frame, deadline) = (oldest.shape[1..].to_vec(), oldest.arrived + window);
        let ready: usize = waiting.requests.iter().filter(|r| r.shape[1..] == frame[..]).map(|r| r.shape[0]).sum();
        let now = Instant::now();
        if ready >= max || now >= deadline || waiting.closed {
            let mut batch = Vec::new();
            let mut frames = 0;
            let mut rest = VecDeque::with_capacity(waiting.requests.len());
            for request in waiting.requests.drain(..) {
                let fits = request.shape[1..] == frame[..] && (batch.is_empty() || frames + request.shape[0] <= max);
                if fits {
                    frames += request.shape[0];
                    batch.push(request);
                } else {
                    rest.push_back(request);
                }
            }
            waiting.requests = rest;
            return Some(batch);
        }
        waiting = queue.arrived.wait_timeout(waiting, deadline - now).unwrap().0;
    }
}

/// One stream's handle on a [`SharedModel`]: a [`Backend`] whose `run` waits for the batch its
/// tensor joined.
pub struct StreamBackend {
    shared: Arc<SharedModel>,
    reply: SyncSender<Result<Done>>,
    answers: Receiver<Result<Done>>,
    /// The last request's input and output buffers, reused.
    spare: Vec<f32>,
    spare_output: Vec<f32>,
    batch: Option<usize>,
    device_ms: Option<f64>,
    notes: Vec<String>,
}

impl StreamBackend {
    pub fn model(&self) -> &Arc<SharedModel> {
        &self.shared
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        self.shared.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Backend for StreamBackend {
    fn describe(&self) -> String {
        self.shared.description.clone()
    }

    fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()> {
        let len: usize = shape.iter().product();
        if input.len() != len || shape[0] == 0 {
            return Err(Error::Invalid(format!("input has {} values, shape {shape:?} needs {len}", input.len())));
        }
        let mut buffer = std::mem::take(&mut self.spare);
        buffer.clear();
        buffer.extend_from_slice(input);
        let output_buffer = std::mem::take(&mut self.spare_output);
        let request =
            Request { shape, input: buffer, output: output_buffer, arrived: Instant::now(), reply: self.reply.clone() };
        {
            let mut waiting = self.shared.queue.waiting.lock().unwrap();
            waiting.requests.push_back(request);
        }
        self.shared.queue.arrived.notify_one();
        let mut done = self
            .answers
            .recv()
            .map_err(|_| Error::Invalid("the shared model's worker stopped before answering".into()))??;
        // The caller's buffer becomes the next request's: the translation is not copied again.
        std::mem::swap(output, &mut done.output);
        self.spare_output = done.output;
        self.spare = done.input;
        self.batch = Some(done.batch);
        self.device_ms = done.device_ms;
        self.notes.extend(done.notes);
        Ok(())
    }

    fn device_ms(&self) -> Option<f64> {
        self.device_ms
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn batch_size(&self) -> Option<usize> {
        self.batch
    }

    fn shared_by(&self) -> Option<usize> {
        Some(self.shared.streams())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    /// Doubles its input after `delay` per batch, recording each batch's size and the most
    /// batches it and its forks ran at once.
    #[derive(Clone, Default)]
    struct Doubler {
        delay: Duration,
        sizes: Arc<Mutex<Vec<usize>>>,
        forks: bool,
        running: Arc<AtomicUsize>,
        most_at_once: Arc<AtomicUsize>,
    }

    impl Backend for Doubler {
        fn describe(&self) -> String {
            "doubler".into()
        }

        fn fork(&self) -> Option<Result<Box<dyn Backend>>> {
            self.forks.then(|| Ok(Box::new(self.clone()) as Box<dyn Backend>))
        }

        fn run(&mut self, input: &[f32], shape: [usize; 4], output: &mut Vec<f32>) -> Result<()> {
            let at_once = self.running.fetch_add(1, Ordering::AcqRel) + 1;
            self.most_at_once.fetch_max(at_once, Ordering::AcqRel);
            self.sizes.lock().unwrap().push(shape[0]);
            std::thread::sleep(self.delay);
            output.clear();
            output.extend(input.iter().map(|v| v * 2.0));
            self.running.fetch_sub(1, Ordering::AcqRel);
            Ok(())
        }
    }

    fn shared(window_ms: u64, max_batch: usize, delay_ms: u64) -> (Arc<SharedModel>, Arc<Mutex<Vec<usize>>>) {
        let backend = Doubler { delay: Duration::from_millis(delay_ms), ..Doubler::default() };
        let sizes = backend.sizes.clone();
        let options = BatchOptions { window: Duration::from_millis(window_ms), max_batch, concurrent: 1 };
        (SharedModel::start(Box::new(backend), options).unwrap(), sizes)
    }

    /// `streams` threads each run `frames` tensors (starting together each frame), checking every
    /// answer is its own input doubled.
    fn run_streams(model: &Arc<SharedModel>, streams: usize, frames: usize, shape: [usize; 4]) {
        let barrier = Arc::new(Barrier::new(streams));
        let threads: Vec<_> = (0..streams)
            .map(|s| {
                let (mut backend, barrier) = (model.stream(), barrier.clone());
                std::thread::spawn(move || {
                    let mut output = Vec::new();
                    for f in 0..frames {
                        let input: Vec<f32> =
                            (0..shape.iter().product()).map(|i| (s * 1000 + f * 10 + i) as f32).collect();
                        barrier.wait();
                        backend.run(&input, shape, &mut output).unwrap();
                        assert_eq!(output, input.iter().map(|v| v * 2.0).collect::<Vec<_>>(), "stream {s} frame {f}");
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn frames_arriving_together_run_as_one_batch_and_each_stream_gets_its_own() {
        let (model, sizes) = shared(200, 4, 0);
        run_streams(&model, 3, 5, [1, 3, 2, 2]);
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 15);
        assert!(sizes.iter().any(|&n| n > 1), "no batch of several frames: {sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 3));
        let counted = model.batch_sizes();
        assert_eq!(counted.iter().enumerate().map(|(i, n)| (i + 1) * *n as usize).sum::<usize>(), 15);
    }

    #[test]
    fn a_zero_window_never_batches() {
        let (model, sizes) = shared(0, 4, 2);
        run_streams(&model, 3, 5, [1, 3, 2, 2]);
        assert_eq!(*sizes.lock().unwrap(), vec![1; 15]);
        assert_eq!(model.batch_sizes(), vec![15]);
    }

    #[test]
    fn batches_hold_at_most_the_maximum_and_one_size_each() {
        let (model, sizes) = shared(300, 2, 0);
        run_streams(&model, 4, 3, [1, 3, 2, 2]);
        assert!(sizes.lock().unwrap().iter().all(|&n| n <= 2));
        // Two sizes at once: never in one batch (the doubler would get a ragged input).
        let (model, sizes) = shared(100, 8, 0);
        let small = std::thread::spawn({
            let model = model.clone();
            move || run_streams(&model, 2, 3, [1, 3, 2, 2])
        });
        run_streams(&model, 2, 3, [1, 3, 4, 2]);
        small.join().unwrap();
        assert_eq!(sizes.lock().unwrap().iter().sum::<usize>(), 12);
    }

    #[test]
    fn forks_run_batches_at_once_and_each_stream_keeps_its_order() {
        for (forks, concurrent, expected) in [(true, 2, 2), (true, 1, 1), (false, 3, 1)] {
            let backend = Doubler { delay: Duration::from_millis(20), forks, ..Doubler::default() };
            let most_at_once = backend.most_at_once.clone();
            let options = BatchOptions { window: Duration::ZERO, max_batch: 1, concurrent };
            let model = SharedModel::start(Box::new(backend), options).unwrap();
            assert_eq!(model.options().concurrent, expected);
            assert_eq!(model.describe().contains(&format!("{expected} batches at once")), expected > 1);
            // Every answer is its stream's own frame, in the order sent (checked inside).
            run_streams(&model, 4, 5, [1, 3, 2, 2]);
            assert_eq!(most_at_once.load(Ordering::Acquire), expected, "forks {forks}, concurrent {concurrent}");
            assert_eq!(model.batch_sizes(), vec![20]);
        }
    }

    #[test]
    fn a_stalled_stream_delays_the_others_by_at_most_the_window() {
        let window = Duration::from_millis(50);
        let (model, _) = shared(50, 4, 0);
        // Another stream holds a handle and sends nothing (stalled); this one runs alone.
        let _stalled = model.stream();
        let mut backend = model.stream();
        let mut output = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            backend.run(&[1.0; 12], [1, 3, 2, 2], &mut output).unwrap();
            let waited = start.elapsed();
            assert!(waited >= window && waited < window * 3, "waited {waited:?} with a {window:?} window");
        }
        assert_eq!(backend.batch_size(), Some(1));
        assert_eq!(backend.shared_by(), Some(2));
    }

    #[test]
    fn a_failed_batch_fails_each_of_its_streams_and_the_next_runs() {
        struct Failing(usize);
        impl Backend for Failing {
            fn describe(&self) -> String {
                "failing".into()
            }
            fn run(&mut self, input: &[f32], _: [usize; 4], output: &mut Vec<f32>) -> Result<()> {
                self.0 += 1;
                if self.0 == 1 {
                    return Err(Error::Invalid("out of memory".into()));
                }
                output.clear();
                output.extend_from_slice(input);
                Ok(())
            }
        }
        let model = SharedModel::start(Box::new(Failing(0)), BatchOptions::default()).unwrap();
        let mut backend = model.stream();
        let mut output = Vec::new();
        let e = backend.run(&[1.0; 12], [1, 3, 2, 2], &mut output).unwrap_err();
        assert!(e.to_string().contains("out of memory"), "{e}");
        backend.run(&[1.0; 12], [1, 3, 2, 2], &mut output).unwrap();
        assert_eq!(output, vec![1.0; 12]);
        let e = backend.run(&[1.0; 5], [1, 3, 2, 2], &mut output).unwrap_err();
        assert!(e.to_string().contains("needs 12"), "{e}");
    }

    #[test]
    fn the_worker_stops_with_the_last_handle() {
        let (model, _) = shared(1, 4, 0);
        let weak = Arc::downgrade(&model);
        let backend = model.stream();
        drop(model);
        assert!(weak.upgrade().is_some(), "a stream still holds it");
        assert_eq!(backend.shared_by(), Some(1));
        drop(backend);
        assert!(weak.upgrade().is_none());
    }
}
