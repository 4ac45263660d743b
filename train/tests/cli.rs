//! The binary as a user meets it: bad input ends with one clear message, and a training killed
//! with SIGKILL at any moment leaves a checkpoint that loads.
mod common;

use std::path::Path;
use std::time::Duration;

use common::run_bin;
use cyclegan_train::checkpoint;
use cyclegan_train::config::TrainConfig;
use cyclegan_train::trainer::CycleGan;

/// fit flags for a tiny, fast run on `data` into `runs`.
fn tiny_fit<'a>(data: &'a str, runs: &'a str) -> Vec<&'a str> {
    vec![
        "fit",
        "--quiet",
        "--dataroot",
        data,
        "--checkpoints-dir",
        runs,
        "--name",
        "run",
        "--preprocess",
        "crop",
        "--crop-size",
        "32",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--n-blocks",
        "6",
        "--num-workers",
        "1",
        "--threads",
        "1",
        "--sample-freq",
        "2",
        "--log-freq",
        "1",
    ]
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let (ok, text) = run_bin(args);
    assert!(!ok, "expected failure for {args:?}, got:\n{text}");
    for n in needles {
        assert!(text.contains(n), "message for {args:?} lacks {n:?}:\n{text}");
    }
    assert!(!text.contains("panicked"), "panic instead of an error:\n{text}");
}

#[test]
fn bad_input_gets_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let runs = s(&d.join("runs"));

    fails_with(&["fit", "--dataroot", &s(&d.join("nowhere")), "--checkpoints-dir", &runs], &["nowhere", "--dataroot"]);
    std::fs::create_dir_all(d.join("empty/trainA")).unwrap();
    std::fs::create_dir_all(d.join("empty/trainB")).unwrap();
    fails_with(&["fit", "--dataroot", &s(&d.join("empty")), "--checkpoints-dir", &runs], &["trainA", "no images"]);

    let bad = d.join("bad.toml");
    std::fs::write(&bad, "[train]\nlearning_rate = 0.1\n").unwrap();
    fails_with(&["fit", "--config", &s(&bad)], &["bad.toml", "learning_rate"]);
    fails_with(&["fit", "--n-blocks", "7"], &["model.n_blocks", "6 or 9"]);
    fails_with(&["fit", "--lr=-1"], &["train.lr"]);
    fails_with(&["fit", "--lambda-temporal=-1"], &["train.lambda_temporal", "zero or positive"]);
    fails_with(&["fit", "--lambda-temporal", "NaN"], &["train.lambda_temporal"]);
    fails_with(&["fit", "--device", "cuda:1"], &["cuda:1", "CUDA"]);

    let data = common::synth(d, 4, 32);
    let data_s = s(&data);
    let blocker = d.join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let mut args = tiny_fit(&data_s, "");
    let blocked = s(&blocker.join("runs"));
    args[5] = &blocked;
    fails_with(&args, &["not writable", "--checkpoints-dir"]);

    fails_with(&["fit", "--resume", &s(&d.join("no-run"))], &["no-run", "does not exist"]);
    fails_with(
        &["translate", "--checkpoint", &runs, "--direction", "a2b", "--input", &data_s, "--out", &runs],
        &["runs"],
    );

    let mut args = tiny_fit(&data_s, &runs);
    args.extend(["--max-iters", "2"]);
    let (ok, text) = run_bin(&args);
    assert!(ok, "{text}");
    fails_with(&args, &["already holds a training run", "--resume"]);

    let latest = checkpoint::resolve(&d.join("runs/run")).unwrap();
    let g = latest.join("G_A.safetensors");
    let bytes = std::fs::read(&g).unwrap();
    std::fs::write(&g, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&["fit", "--resume", &s(&d.join("runs/run"))], &["G_A.safetensors"]);
    fails_with(
        &["translate", "--checkpoint", &s(&latest), "--direction", "a2b", "--input", &data_s, "--out", &runs],
        &["G_A.safetensors"],
    );
    std::fs::write(latest.join("state.json"), b"{ not json").unwrap();
    fails_with(&["fit", "--resume", &s(&latest)], &["state.json", "corrupt"]);
}

#[test]
fn translate_and_eval_use_a_trained_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 4, 32);
    let runs = dir.path().join("runs");
    let mut args = tiny_fit(data.to_str().unwrap(), runs.to_str().unwrap());
    args.extend(["--n-epochs", "1", "--n-epochs-decay", "0"]);
    let (ok, text) = run_bin(&args);
    assert!(ok, "{text}");
    assert!(runs.join("run/epoch_0001/state.json").is_file());
    assert!(runs.join("run/samples/iter_00000002.png").is_file());

    let out = dir.path().join("translated");
    let (ok, text) = run_bin(&[
        "translate",
        "--checkpoint",
        runs.join("run").to_str().unwrap(),
        "--direction",
        "b2a",
        "--input",
        data.join("testB").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(written.len(), 6);
    let img = image::open(out.join("00000.png")).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));

    let psnr = |direction: &str| {
        let (run, data) = (runs.join("run"), data.to_str().unwrap());
        run_bin(&["eval", "psnr", "--checkpoint", run.to_str().unwrap(), "--dataroot", data, "--direction", direction])
    };
    let (ok, text) = psnr("a2b");
    assert!(ok && text.contains("PSNR G_A(testA) vs testB"), "{text}");
    let (ok, text) = psnr("b2a");
    assert!(ok && text.contains("PSNR G_B(testB) vs testA"), "{text}");

    let temporal = |frames: &str| {
        let (run, input) = (runs.join("run"), data.join("testA"));
        let args = ["eval", "temporal", "--checkpoint", run.to_str().unwrap(), "--input", input.to_str().unwrap()];
        run_bin(&[&args[..], &["--sequence-frames", frames, "--max-images", "2"]].concat())
    };
    let (ok, text) = temporal("4");
    for row in ["| pan |", "| zoom |", "| rotation |", "| deformation |", "| mean |", "still scene"] {
        assert!(ok && text.contains(row), "{row} missing:\n{text}");
    }
    let (ok, text) = temporal("1");
    assert!(!ok && text.contains("at least 2 (--sequence-frames)"), "{text}");
}

#[test]
fn sigkill_during_training_never_leaves_a_broken_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::synth(dir.path(), 6, 32);
    let runs = dir.path().join("runs");
    let run = runs.join("run");
    let (data_s, runs_s) = (data.to_str().unwrap().to_string(), runs.to_str().unwrap().to_string());
    let cfg = |state: &checkpoint::TrainState| -> TrainConfig { state.config.clone() };

    for round in 0..5u64 {
        let mut args = tiny_fit(&data_s, &runs_s);
        args.extend(["--save-latest-freq", "1", "--n-epochs", "50"]);
        if run.join(checkpoint::LATEST).exists() {
            args = vec!["fit", "--quiet", "--resume", run.to_str().unwrap()];
        }
        let mut child = common::bin().args(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1500 + 450 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        if !run.join(checkpoint::LATEST).exists() {
            continue;
        }
        let latest = checkpoint::resolve(&run).unwrap();
        let state = checkpoint::read_state(&latest).unwrap();
        let mut gan = CycleGan::new(&cfg(&state), tch::Device::Cpu);
        gan.load_checkpoint(&latest).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let state = checkpoint::read_state(&checkpoint::resolve(&run).unwrap()).unwrap();
    assert!(state.iteration > 0, "no checkpoint was ever written");
    let names: Vec<String> =
        std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    // The last kill may strike after a checkpoint is renamed into place and before `latest`
    // moves to it, or while one is being written: one of each may be left, never more.
    let count = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    assert!(count("iter_") <= 2, "old iteration checkpoints pile up: {names:?}");
    assert!(count(".tmp-") <= 1, "interrupted writes pile up: {names:?}");
}

/// Each key of each recipe section is a flag of its subcommand, with help, and is in the
/// recipe table of docs/training.md.
#[test]
fn every_recipe_key_is_a_flag_and_documented() {
    let config = TrainConfig { distill: Some(Default::default()), qat: Some(Default::default()), ..Default::default() };
    let recipe = toml::Table::try_from(&config).unwrap();
    let docs = std::fs::read_to_string(common::workspace().join("docs/training.md")).unwrap();
    for (section, subcommand) in
        [("data", "fit"), ("model", "fit"), ("train", "fit"), ("output", "fit"), ("distill", "distill"), ("qat", "qat")]
    {
        let (ok, help) = run_bin(&[subcommand, "--help"]);
        assert!(ok, "{help}");
        let row = docs.lines().find(|l| l.starts_with(&format!("| `[{section}]` |"))).unwrap_or_else(|| {
            panic!("docs/training.md has no row for [{section}]");
        });
        let keys = recipe[section].as_table().unwrap().keys();
        assert!(keys.len() > 0);
        for key in keys {
            let flag = format!("--{} <", key.replace('_', "-"));
            let line = help.lines().find(|l| l.trim_start().starts_with(&flag));
            assert!(line.is_some(), "{section}.{key}: `{subcommand} --help` has no {flag}");
            let described = help.lines().skip_while(|l| !l.trim_start().starts_with(&flag)).nth(1);
            assert!(described.is_some_and(|l| !l.trim().is_empty()), "{section}.{key}: {flag} has no help");
            assert!(row.contains(&format!("`{key}`")), "docs/training.md's [{section}] row lacks `{key}`");
        }
    }
}
