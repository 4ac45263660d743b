//! `cyclegan-train bench --distill`: a teacher and its students side by side, on what an edge
//! deployment is judged by: parameters and MACs (thop's count), ONNX Runtime CPU latency at the
//! training size and at 640x360, PSNR against the teacher and FID against real target-domain
//! images on held-out images, and PSNR against the ground truth where the dataset has one
//! (`cyclegan-train synth`). Prints a Markdown table with the teacher/student ratios.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tch::Device;

use cyclegan_model::Direction;
use cyclegan_onnx::{FloatType, Precision};
use cyclegan_train::data::{list_images, load_rgb};
use cyclegan_train::eval::{Fakes, fid_kid, paired_psnr, psnr};
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::fid::{Inception, find_inception};
use cyclegan_train::translate::Translator;

use super::{Timing, scratch_dir};

const ORT_PEER_PY: &str = include_str!("../../../../../edge/python/ort_peer.py");
/// The sizes latency is measured at: the paper's crop and a 360p camera frame.
const SIZES: [(u32, u32); 2] = [(256, 256), (640, 360)];

#[derive(clap::Args)]
pub struct DistillArgs {
    /// The teacher's run or checkpoint folder.
    #[arg(long)]
    teacher: PathBuf,
    /// A distilled run; repeat for several.
    #[arg(long, required = true)]
    student: Vec<PathBuf>,
    /// Held-out images: testA/ and testB/ (real target-domain images; ground truth on synthetic
    /// datasets).
    #[arg(long)]
    dataroot: PathBuf,
    /// The generators' direction.
    #[arg(long, value_enum, default_value = "a2b")]
    direction: Direction,
    /// The TorchScript Inception-v3 of FID (default: .venv/inception-v3.pt).
    #[arg(long)]
    inception: Option<PathBuf>,
    #[command(flatten)]
    timing: Timing,
}

struct Row {
    name: String,
    parameters: u64,
    gmac: f64,
    ms: Vec<f64>,
    psnr_teacher: Option<f64>,
    fid: f64,
    psnr_truth: Option<f64>,
}

fn ort_ms(python: &Path, script: &Path, model: &Path, (w, h): (u32, u32), args: &DistillArgs) -> Result<f64> {
    let out = Command::new(python)
        .arg(script)
        .arg("bench")
        .arg(model)
        .args([w.to_string(), h.to_string(), args.timing.threads.to_string(), args.timing.iters.to_string()])
        .arg(args.timing.warmup.to_string())
        .output()
        .with_context(|| format!("cannot run {} (pass --python with onnxruntime installed)", python.display()))?;
    if !out.status.success() {
        bail!("ONNX Runtime benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("ONNX Runtime printed no JSON")?;
    v["median_ms"].as_f64().context("ONNX Runtime benchmark: no median_ms")
}

fn row(
    name: &str,
    run: &Path,
    teacher: Option<&Translator>,
    args: &DistillArgs,
    (dataroot, direction): (&Path, Direction),
    (python, script, dir): (&Path, &Path, &Path),
    inception: &Inception,
) -> Result<Row> {
    let t = Translator::load(run, direction, Device::Cpu)?;
    let model =
        export_generator(run, &ExportOptions { direction, precision: Precision::Fp32, io_type: FloatType::F32 })?;
    let onnx = dir.join(format!("{name}.onnx"));
    cyclegan_onnx::write_model(&onnx, &model)?;
    let cost = cyclegan_onnx::cost::cost(&model, 256, 256)?;
    let ms = SIZES.iter().map(|&size| ort_ms(python, script, &onnx, size, args)).collect::<Result<Vec<_>>>()?;
    let (source, target) = match direction {
        Direction::A2b => ("testA", "testB"),
        Direction::B2a => ("testB", "testA"),
    };
    let inputs = list_images(&dataroot.join(source), 0)?;
    let psnr_teacher = match teacher {
        Some(teacher) => {
            let mut sum = 0.0;
            for path in &inputs {
                let img = load_rgb(path)?;
                sum += psnr(&t.image(&img), &teacher.image(&img)).min(100.0);
            }
            Some(sum / inputs.len().max(1) as f64)
        }
        None => None,
    };
    let real = dataroot.join(target);
    let fid =
        fid_kid(inception, &real, Fakes::Translated { translator: &t, input: &dataroot.join(source) }, |_, _| {})?.fid;
    let psnr_truth =
        (direction == Direction::A2b).then(|| paired_psnr(&t, dataroot).ok().map(|s| s.psnr_model)).flatten();
    Ok(Row {
        name: name.into(),
        parameters: cost.parameters,
        gmac: cost.macs as f64 / 1e9,
        ms,
        psnr_teacher,
        fid,
        psnr_truth,
    })
}

pub fn run(args: &DistillArgs) -> Result<()> {
    let (teacher, dataroot) = (&args.teacher, &args.dataroot);
    let python = args.timing.python();
    tch::set_num_threads(args.timing.threads as i32);
    let dir = scratch_dir("distill")?;
    let script = dir.join("ort_peer.py");
    std::fs::write(&script, ORT_PEER_PY)?;
    let inception = Inception::load(&find_inception(args.inception.as_deref())?, Device::Cpu)?;
    let direction = args.direction;
    let teacher_t = Translator::load(teacher, direction, Device::Cpu)?;
    let context = (dataroot.as_path(), direction);
    let tools = (python.as_path(), script.as_path(), dir.as_path());
    let mut rows = vec![row("teacher", teacher, None, args, context, tools, &inception)?];
    for (i, student) in args.student.iter().enumerate() {
        rows.push(row(&format!("student{}", i + 1), student, Some(&teacher_t), args, context, tools, &inception)?);
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\nDistillation: {} on {} ({} threads, ONNX Runtime CPU, median of {} after {} warm-up)",
        direction.name(),
        dataroot.display(),
        args.timing.threads,
        args.timing.iters,
        args.timing.warmup
    );
    println!(
        "| model | run | params | GMAC @256x256 | ms @256x256 | ms @640x360 | PSNR vs teacher | FID vs real | PSNR vs truth |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} dB"));
    let runs: Vec<&PathBuf> = std::iter::once(teacher).chain(&args.student).collect();
    for (r, run) in rows.iter().zip(runs) {
        println!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {:.2} | {} |",
            r.name,
            run.display(),
            r.parameters,
            r.gmac,
            r.ms[0],
            r.ms[1],
            opt(r.psnr_teacher),
            r.fid,
            opt(r.psnr_truth)
        );
    }
    let t = &rows[0];
    for r in &rows[1..] {
        println!(
            "| teacher / {} | | {:.1}x | {:.1}x | {:.1}x | {:.1}x | | FID {:+.1}% | |",
            r.name,
            t.parameters as f64 / r.parameters as f64,
            t.gmac / r.gmac,
            t.ms[0] / r.ms[0],
            t.ms[1] / r.ms[1],
            100.0 * (r.fid - t.fid) / t.fid
        );
    }
    Ok(())
}
