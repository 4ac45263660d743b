//! Data-parallel training on c10d's Gloo over 127.0.0.1: ranks started by `fit --nproc`, by
//! torchrun (installed with PyTorch) and by hand with torchrun's environment. Two ranks of
//! batch 1 train as one process of batch 2; a killed or paused rank stops the other with its
//! number; broken setups are named.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cyclegan_train::config::{Preprocess, TrainConfig};
use cyclegan_train::data::list_images;
use cyclegan_train::imageio::rgb_to_tensor;
use cyclegan_train::report::LossLog;
use cyclegan_train::trainer::{CycleGan, Losses};
use tch::Device;
use tch::nn::Module;

/// A small model on 32x32 images; pools off and identity on, so that a batch of 2 is exactly
/// the mean of two batches of 1.
fn tiny(dataroot: &Path, runs: &Path) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.dataroot = dataroot.to_path_buf();
    c.data.preprocess = Preprocess::Crop;
    c.data.crop_size = 32;
    c.data.num_workers = 1;
    c.model.ngf = 8;
    c.model.ndf = 8;
    c.model.n_blocks = 6;
    c.train.pool_size = 0;
    c.train.lambda_identity = 0.5;
    c.train.threads = 1;
    c.train.n_epochs = 1;
    c.train.n_epochs_decay = 0;
    c.output.checkpoints_dir = runs.to_path_buf();
    c.output.name = "run".into();
    c.output.sample_freq = 0;
    c.output.log_freq = 1;
    c
}

fn write_config(c: &TrainConfig, path: &Path) -> PathBuf {
    std::fs::write(path, toml::to_string(c).unwrap()).unwrap();
    path.to_path_buf()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Rank `rank` of `world`, started by hand with torchrun's environment.
fn rank(rank: usize, world: usize, port: u16, args: &[&str]) -> Command {
    let mut cmd = common::bin();
    cmd.args(args)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("LOCAL_WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string());
    cmd
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait_within(mut child: Child, limit: Duration) -> (bool, String, Duration) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), text(&out), start.elapsed())
}

fn losses(run: &Path) -> Vec<cyclegan_train::report::LossRow> {
    let names = [Losses::NAMES.as_slice()].concat();
    LossLog::open(&run.join("losses.csv"), &names, u64::MAX).unwrap().rows
}

fn load(c: &TrainConfig, run: &Path) -> CycleGan {
    let mut gan = CycleGan::new(c, Device::Cpu);
    gan.load_checkpoint(&run.join("latest")).unwrap();
    gan
}

/// The largest difference between two runs' networks on `x`, over G_A, G_B, D_A and D_B.
fn output_difference(a: &CycleGan, b: &CycleGan, x: &tch::Tensor) -> f64 {
    let nets = |g: &CycleGan| [g.g_a.forward(x), g.g_b.forward(x), g.d_a.forward(x), g.d_b.forward(x)];
    nets(a).iter().zip(&nets(b)).map(|(p, q)| (p - q).abs().max().double_value(&[])).fold(0.0, f64::max)
}

#[test]
fn two_ranks_of_batch_one_train_as_one_process_of_batch_two() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 20, 32);
    let base = tiny(&data, &dir.path().join("runs"));
    let fit = |name: &str, batch: usize, extra: &[&str]| {
        let mut c = base.clone();
        c.data.batch_size = batch;
        c.output.name = name.into();
        let config = write_config(&c, &dir.path().join(format!("{name}.toml")));
        let out = common::bin().args(["fit", "--config", config.to_str().unwrap()]).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        (c, text(&out))
    };
    let runs = dir.path().join("runs");
    let test: Vec<tch::Tensor> = list_images(&data.join("testA"), 0)
        .unwrap()
        .iter()
        .map(|p| rgb_to_tensor(&image::open(p).unwrap().to_rgb8()))
        .collect();
    let x = tch::Tensor::cat(&test, 0);

    // One step: the ranks' averaged gradients are the batch's. (Adam's first step moves each
    // weight by ±lr whatever its gradient's size, so the few whose gradient is zero in exact
    // arithmetic, e.g. a convolution's bias before an instance norm, move on rounding noise;
    // they are the ones the norm cancels, so the networks are compared by their outputs.)
    let (c, _) = fit("two", 1, &["--nproc", "2", "--max-iters", "1"]);
    fit("one", 2, &["--max-iters", "1"]);
    fit("alone", 1, &["--max-iters", "1"]);
    let (two, one, alone) = (load(&c, &runs.join("two")), load(&c, &runs.join("one")), load(&c, &runs.join("alone")));
    let same = output_difference(&two, &one, &x);
    let unaveraged = output_difference(&alone, &one, &x);
    println!("after one step: 2 x 1 vs 1 x 2 {same:.2e}; rank 0's batch alone vs 1 x 2 {unaveraged:.2e}");
    assert!(same <= 1e-5, "2 ranks x batch 1 and 1 x batch 2 differ by {same}");
    assert!(unaveraged > 1e3 * same.max(1e-7), "the comparison cannot tell averaging from none");
    common::assert_same_losses(&losses(&runs.join("two")), &losses(&runs.join("one")));

    // Ten steps: both finish the epoch (10 global batches), rank 0 alone reports and writes.
    let resume = |name: &str, extra: &[&str]| {
        let out = common::bin().args(["fit", "--resume", runs.join(name).to_str().unwrap()]).args(extra).output();
        let out = out.unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let out = resume("two", &["--nproc", "2"]);
    assert_eq!(out.matches("steps done").count(), 1, "only rank 0 reports: {out}");
    assert!(out.contains("10 steps done"), "{out}");
    resume("one", &[]);
    let (l2, l1) = (losses(&runs.join("two")), losses(&runs.join("one")));
    assert_eq!((l2.len(), l1.len()), (10, 10));
    let drift = output_difference(&load(&c, &runs.join("two")), &load(&c, &runs.join("one")), &x);
    println!("after ten steps: outputs differ by {drift:.2e}");
}

#[test]
fn torchrun_starts_the_ranks_and_rank_0_alone_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 8, 32);
    let c = tiny(&data, &dir.path().join("runs"));
    let config = write_config(&c, &dir.path().join("c.toml"));
    let torchrun = common::python().with_file_name("torchrun");
    let out = Command::new(&torchrun)
        .args(["--standalone", "--nproc-per-node", "2", "--no-python", env!("CARGO_BIN_EXE_cyclegan-train")])
        .args(["fit", "--config", config.to_str().unwrap(), "--max-iters", "3"])
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches("3 steps done").count(), 1, "{log}");
    let run = dir.path().join("runs/run");
    let checkpoints: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("iter_") || n.starts_with("epoch_"))
        .collect();
    assert_eq!(checkpoints, ["iter_00000003"], "one checkpoint, by rank 0");
    assert_eq!(losses(&run).len(), 3);
    let state = cyclegan_train::checkpoint::read_state(&run.join("latest")).unwrap();
    assert_eq!((state.world_size, state.iteration, state.next_batch), (2, 3, 3));
}

/// Two ranks of a long run with `--dist-timeout-s timeout_s`, once the first checkpoint is
/// written: rank 0, rank 1 and the run folder.
fn two_ranks_past_a_checkpoint(dir: &Path, timeout_s: &str) -> (Child, Child, PathBuf) {
    let data = common::synth(dir, 8, 32);
    let mut c = tiny(&data, &dir.join("runs"));
    c.train.n_epochs = 1000;
    c.output.save_latest_freq = 2;
    let config = write_config(&c, &dir.join("c.toml"));
    let port = free_port();
    let args = ["fit", "--config", config.to_str().unwrap(), "--dist-timeout-s", timeout_s, "--quiet"];
    let spawn = |r| rank(r, 2, port, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (r0, r1) = (spawn(0), spawn(1));
    let run = dir.join("runs/run");
    let start = Instant::now();
    while !run.join("latest/state.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after two minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    (r0, r1, run)
}

#[test]
fn a_killed_rank_stops_the_other_with_its_number_and_the_run_resumes_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let (r0, mut r1, run) = two_ranks_past_a_checkpoint(dir.path(), "10");
    std::thread::sleep(Duration::from_millis(300));
    r1.kill().unwrap();
    r1.wait().unwrap();
    let (ok, out, took) = wait_within(r0, Duration::from_secs(60));
    assert!(!ok, "rank 0 went on without rank 1: {out}");
    assert!(out.contains("rank 1 stopped"), "{out}");
    assert!(took < Duration::from_secs(20), "rank 0 took {took:?} to stop");

    let state = cyclegan_train::checkpoint::read_state(&run.join("latest")).unwrap();
    assert_eq!(state.world_size, 2);
    let steps = (state.iteration + 2).to_string();
    let (ok, out) = common::run_bin(&["fit", "--resume", run.to_str().unwrap(), "--max-iters", &steps]);
    assert!(ok, "{out}");
    assert!(out.contains("resuming a run of 2 rank(s) on 1: the global batch is now 1 (was 2)"), "{out}");
    assert!(out.contains(&format!("{steps} steps done")), "{out}");
}

/// A paused rank (as a hung GPU or a stuck data loader) holds no connection error: only the
/// group's own deadline can stop the other, the path NCCL depends on (its wait does not block).
#[test]
fn a_paused_rank_is_named_by_the_other_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (r0, mut r1, _) = two_ranks_past_a_checkpoint(dir.path(), "5");
    let signal = |name: &str| {
        let status = Command::new("kill").args([name, &r1.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let (ok, out, took) = wait_within(r0, Duration::from_secs(90));
    signal("-KILL");
    r1.wait().unwrap();
    assert!(!ok, "rank 0 went on without rank 1: {out}");
    assert!(out.contains("rank 1 stopped (no heartbeat"), "{out}");
    assert!(out.contains("did not complete within 5 s"), "{out}");
    // The backends' own timeouts are a minute longer: stopping sooner is the group's deadline.
    assert!(took < Duration::from_secs(25), "rank 0 took {took:?} to stop");
}

#[test]
fn broken_setups_get_one_message_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 4, 32);
    let c = tiny(&data, &dir.path().join("runs"));
    let config = write_config(&c, &dir.path().join("c.toml"));
    let fit = ["fit", "--config", config.to_str().unwrap(), "--dist-timeout-s", "3", "--max-iters", "1"];
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        text(&out)
    };

    let out = run(common::bin().args(fit).env("WORLD_SIZE", "2"));
    assert!(out.contains("WORLD_SIZE is set but RANK is not"), "{out}");
    let out = run(rank(0, 2, free_port(), &fit).args(["--dist-backend", "nccl"]));
    assert!(out.contains("nccl needs a CUDA device"), "{out}");
    let out = run(rank(0, 2, free_port(), &fit).args(["--nproc", "2"]));
    assert!(out.contains("let torchrun start the ranks"), "{out}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = run(&mut rank(0, 2, port, &fit));
    assert!(out.contains(&format!("could not hold the rendezvous on 127.0.0.1:{port}")), "{out}");
    drop(busy);

    let started = Instant::now();
    let out = run(&mut rank(1, 2, free_port(), &fit));
    assert!(out.contains("could not reach the rendezvous at 127.0.0.1"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // Ranks started with different settings: the odd one names the setting, the other the rank.
    let port = free_port();
    let r0 = rank(0, 2, port, &fit).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let r1 = rank(1, 2, port, &fit).args(["--batch-size", "2"]).output().unwrap();
    let r0 = r0.wait_with_output().unwrap();
    assert!(!r1.status.success() && !r0.status.success());
    let (t0, t1) = (text(&r0), text(&r1));
    assert!(t1.contains("rank 1's configuration differs from rank 0's: data.batch_size = 1 vs 2"), "{t1}");
    assert!(t0.contains("rank 1 failed: ") && t0.contains("data.batch_size"), "{t0}");

    if tch::Cuda::device_count() == 0 {
        let out = run(rank(0, 2, free_port(), &fit).args(["--device", "cuda"]));
        assert!(out.contains("LOCAL_RANK 0 has no CUDA device: this machine shows 0"), "{out}");
    }

    let distill = ["distill", "--config", config.to_str().unwrap(), "--teacher", config.to_str().unwrap()];
    let out = run(&mut rank(0, 2, free_port(), &distill));
    assert!(out.contains("distilling runs in one process"), "{out}");
}

#[test]
#[ignore = "needs a GPU"]
fn a_single_rank_on_a_gpu_runs_its_collectives_on_nccl() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 4, 32);
    let mut c = tiny(&data, &dir.path().join("runs"));
    c.train.device = "cuda".into();
    let config = write_config(&c, &dir.path().join("c.toml"));
    let out = rank(0, 1, free_port(), &["fit", "--config", config.to_str().unwrap(), "--max-iters", "2"]).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 steps done"), "{}", text(&out));
}
