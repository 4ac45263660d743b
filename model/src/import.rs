//! A ResNet generator saved by PyTorch (`torch.save(state_dict)`, as the reference
//! implementation's `latest_net_G_A.pth`) into the checkpoint format. Tensors are matched by the
//! generator's structure (module order and shapes), not by key names, so that renamed blocks,
//! convolutions without bias and affine instance norms load too.
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Recipe, State};
use crate::config::{Family, GeneratorConfig};
use crate::direction::Direction;
use crate::error::{Error, Result};
use crate::layout::{self, Layer};
use crate::pth::{ImportError, read_state_dict};
use crate::tensor::NamedTensor;

/// What was matched, for the user.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub ngf: i64,
    pub n_blocks: i64,
    pub affine_norm: bool,
    /// (key in the file, our key, shape)
    pub matched: Vec<(String, String, Vec<i64>)>,
    /// Our bias tensors the file did not have (set to zero).
    pub zero_biases: Vec<String>,
    /// Instance norms whose unused running statistics (saved by PyTorch before 0.4) were left out.
    pub dropped_running_stats: usize,
}

impl ImportReport {
    /// `ResNet generator, ngf 64, 9 blocks, plain instance norm`, and what was filled in or left out.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "ResNet generator, ngf {}, {} blocks, {} instance norm",
            self.ngf,
            self.n_blocks,
            if self.affine_norm { "affine" } else { "plain" }
        );
        if !self.zero_biases.is_empty() {
            text += &format!(", {} convolutions without bias (zero)", self.zero_biases.len());
        }
        if self.dropped_running_stats > 0 {
            text += &format!(
                ", the unused running statistics of {} instance norms left out (saved by PyTorch before 0.4)",
                self.dropped_running_stats
            );
        }
        text
    }
}

struct Module {
    prefix: String,
    weight: Option<NamedTensor>,
    bias: Option<NamedTensor>,
}

/// The modules of a state dict in order, and how many instance norms' running statistics were
/// left out: PyTorch before 0.4 saved them for every InstanceNorm (most published CycleGAN
/// models carry them), though instance norm never uses them; the reference implementation
/// deletes them on loading too. Running statistics beside a scale and shift (BatchNorm), or
/// with a batch counter (tracked on purpose), are refused.
fn group_modules(tensors: Vec<NamedTensor>) -> std::result::Result<(Vec<Module>, usize), ImportError> {
    let refuse = |name: &str| {
        ImportError::Generator(format!(
            "`{name}`: the generator normalises with running statistics (BatchNorm, or InstanceNorm with \
             track_running_stats); only instance norm without them (the CycleGAN default) is supported"
        ))
    };
    let mut modules: Vec<Module> = Vec::new();
    let mut with_stats: Vec<String> = Vec::new();
    for t in tensors {
        let (prefix, leaf) = t.name.rsplit_once('.').unwrap_or(("", t.name.as_str()));
        let prefix = prefix.to_string();
        match leaf {
            "num_batches_tracked" => return Err(refuse(&t.name)),
            "running_mean" | "running_var" => {
                if !with_stats.contains(&prefix) {
                    with_stats.push(prefix);
                }
                continue;
            }
            _ => {}
        }
        let idx = match modules.iter().position(|m| m.prefix == prefix) {
            Some(i) => i,
            None => {
                modules.push(Module { prefix, weight: None, bias: None });
                modules.len() - 1
            }
        };
        let slot = match leaf {
            "weight" => &mut modules[idx].weight,
            "bias" => &mut modules[idx].bias,
            _ => return Err(ImportError::Generator(format!("`{}`: unexpected tensor in a ResNet generator", t.name))),
        };
        *slot = Some(t);
    }
    if let Some(norm) = with_stats.iter().find(|p| modules.iter().any(|m| &&m.prefix == p)) {
        return Err(refuse(&format!("{norm}.running_mean")));
    }
    Ok((modules, with_stats.len()))
}

/// A ResNet generator's layout for this size (the importer only reads its shapes and paths).
fn layout_of(ngf: i64, n_blocks: i64) -> Vec<Layer> {
    layout::resnet(&GeneratorConfig {
        in_channels: 3,
        out_channels: 3,
        ngf,
        n_blocks,
        affine_norm: false,
        family: Family::Resnet,
    })
}

/// Convolutions (path, weight shape, bias channels) and norms (path, channels), in module order.
type Expected = (Vec<(String, Vec<i64>, i64)>, Vec<(String, i64)>);

fn expected(layers: &[Layer]) -> Expected {
    let (convs, norms): (Vec<_>, Vec<_>) = layout::weighted(layers).into_iter().partition(|w| w.shape.len() == 4);
    (
        convs.into_iter().map(|w| (w.path.to_string(), w.shape, w.channels)).collect(),
        norms.into_iter().map(|w| (w.path.to_string(), w.channels)).collect(),
    )
}

/// How many convolutions a generator has outside its residual blocks, and in each block.
fn conv_counts() -> (usize, usize) {
    let count = |n_blocks| expected(&layout_of(1, n_blocks)).0.len();
    (count(0), count(1) - count(0))
}

/// Maps a state dict onto our generator; returns our named tensors and the report.
pub fn match_generator(
    tensors: Vec<NamedTensor>,
    claimed_ngf: Option<i64>,
) -> std::result::Result<(Vec<NamedTensor>, ImportReport), ImportError> {
    let (modules, dropped_running_stats) = group_modules(tensors)?;
    let (convs, norms): (Vec<Module>, Vec<Module>) =
        modules.into_iter().partition(|m| m.weight.as_ref().is_some_and(|w| w.shape.len() == 4));
    let first = convs.first().and_then(|m| m.weight.as_ref()).ok_or("no convolution weights: not a generator")?;
    let ngf = first.shape[0];
    if first.shape[1..] != [3, 7, 7] {
        return Err(ImportError::Generator(format!(
            "the first convolution `{}` has shape {:?}; a ResNet generator starts with [ngf, 3, 7, 7] \
             (U-Net and other generators are not supported)",
            first.name, first.shape
        )));
    }
    if let Some(claimed) = claimed_ngf
        && claimed != ngf
    {
        return Err(ImportError::Generator(format!(
            "--ngf {claimed} was given, but the file's generator has ngf {ngf}"
        )));
    }
    let (outside, per_block) = conv_counts();
    if convs.len() < outside + per_block || !(convs.len() - outside).is_multiple_of(per_block) {
        return Err(ImportError::Generator(format!(
            "{} convolutions do not make a ResNet generator ({outside} plus {per_block} per residual block)",
            convs.len()
        )));
    }
    let n_blocks = ((convs.len() - outside) / per_block) as i64;
    let affine_norm = !norms.is_empty();
    let (conv_keys, norm_keys) = expected(&layout_of(ngf, n_blocks));
    if affine_norm && norms.len() != norm_keys.len() {
        return Err(ImportError::Generator(format!(
            "{} normalisation layers with parameters, but a {n_blocks}-block ResNet generator has {}",
            norms.len(),
            norm_keys.len()
        )));
    }

    let mut out = Vec::new();
    let mut report = ImportReport {
        ngf,
        n_blocks,
        affine_norm,
        matched: Vec::new(),
        zero_biases: Vec::new(),
        dropped_running_stats,
    };
    let mut mismatches = Vec::new();
    for (module, (key, shape, channels)) in convs.into_iter().zip(conv_keys) {
        let weight = module.weight.expect("convolutions have weights");
        if weight.shape != shape {
            mismatches.push(format!("`{}` is {:?}, {key}.weight needs {shape:?}", weight.name, weight.shape));
            continue;
        }
        report.matched.push((weight.name.clone(), format!("{key}.weight"), shape.clone()));
        out.push(NamedTensor { name: format!("{key}.weight"), ..weight });
        match module.bias {
            Some(b) if b.shape == [channels] => {
                report.matched.push((b.name.clone(), format!("{key}.bias"), b.shape.clone()));
                out.push(NamedTensor { name: format!("{key}.bias"), ..b });
            }
            Some(b) => mismatches.push(format!("`{}` is {:?}, {key}.bias needs [{channels}]", b.name, b.shape)),
            None => {
                report.zero_biases.push(format!("{key}.bias"));
                out.push(NamedTensor {
                    name: format!("{key}.bias"),
                    shape: vec![channels],
                    data: vec![0.0; channels as usize],
                });
            }
        }
    }
    for (module, (key, channels)) in norms.into_iter().zip(norm_keys) {
        for (t, leaf) in [(module.weight, "weight"), (module.bias, "bias")] {
            let Some(t) = t else {
                mismatches.push(format!("norm `{}` has no {leaf}", module.prefix));
                continue;
            };
            if t.shape != [channels] {
                mismatches.push(format!("`{}` is {:?}, {key}.{leaf} needs [{channels}]", t.name, t.shape));
                continue;
            }
            report.matched.push((t.name.clone(), format!("{key}.{leaf}"), t.shape.clone()));
            out.push(NamedTensor { name: format!("{key}.{leaf}"), ..t });
        }
    }
    if !mismatches.is_empty() {
        return Err(ImportError::Generator(format!(
            "the file does not fit a ResNet generator with ngf {ngf} and {n_blocks} blocks:\n  {}",
            mismatches.join("\n  ")
        )));
    }
    Ok((out, report))
}

/// Imports `pth` into a checkpoint folder `out` holding the generator of `direction`.
pub fn import_pth(
    pth: &Path,
    out: &Path,
    direction: Direction,
    claimed_ngf: Option<i64>,
) -> Result<(PathBuf, ImportReport)> {
    let fail = |source| Error::Import { path: pth.to_path_buf(), source };
    let tensors = read_state_dict(pth).map_err(fail)?;
    let (named, report) = match_generator(tensors, claimed_ngf).map_err(fail)?;

    let mut recipe = Recipe::default();
    recipe.model.ngf = report.ngf;
    recipe.model.n_blocks = report.n_blocks;
    recipe.model.affine_norm = report.affine_norm;
    // Nothing of this generator's training is known; a run can start from it but not resume it.
    let mut state = State::new(recipe, 0.0, 0);
    state.imported_from = Some(pth.display().to_string());
    let dir = checkpoint::save_generator(out, direction, &named, &state)?;
    Ok((dir, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[i64]) -> NamedTensor {
        let n = shape.iter().product::<i64>() as usize;
        NamedTensor { name: name.into(), shape: shape.to_vec(), data: vec![0.5; n] }
    }

    /// A state dict in the reference layout, with other key names to show they do not matter.
    fn generator(ngf: i64, n_blocks: i64, prefix: &str) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for (i, (_, shape, bias)) in expected(&layout_of(ngf, n_blocks)).0.into_iter().enumerate() {
            out.push(tensor(&format!("{prefix}.{i}.weight"), &shape));
            out.push(tensor(&format!("{prefix}.{i}.bias"), &[bias]));
        }
        out
    }

    #[test]
    fn matches_by_structure_whatever_the_names() {
        let (named, report) = match_generator(generator(16, 6, "net.layer"), None).unwrap();
        assert_eq!((report.ngf, report.n_blocks, report.affine_norm), (16, 6, false));
        assert_eq!(named.len(), 2 * 18);
        assert_eq!(named[0].name, "model.1.weight");
        assert_eq!(named.last().unwrap().name, "model.23.bias");
        assert!(named.iter().any(|t| t.name == "model.16.weight" && t.shape == [64, 32, 3, 3]));
    }

    #[test]
    fn explains_what_does_not_fit() {
        let mut unet = generator(8, 6, "m");
        unet[0] = tensor("m.0.weight", &[8, 3, 4, 4]);
        assert!(match_generator(unet, None).unwrap_err().to_string().contains("U-Net"));
        assert!(match_generator(generator(8, 6, "m"), Some(64)).unwrap_err().to_string().contains("--ngf 64"));
        let mut wrong = generator(8, 6, "m");
        wrong[4] = tensor("m.2.weight", &[32, 16, 5, 5]);
        let err = match_generator(wrong, None).unwrap_err().to_string();
        assert!(err.contains("m.2.weight") && err.contains("model.7.weight"), "{err}");
        let mut bn = generator(8, 6, "m");
        bn.push(tensor("m.0.running_mean", &[8]));
        assert!(match_generator(bn, None).unwrap_err().to_string().contains("running statistics"));
        let mut tracked = generator(8, 6, "m");
        tracked.push(tensor("n.num_batches_tracked", &[]));
        assert!(match_generator(tracked, None).unwrap_err().to_string().contains("running statistics"));
    }

    #[test]
    fn instance_norm_statistics_of_old_pytorch_are_left_out() {
        let mut old = generator(8, 6, "m");
        for i in [100, 101] {
            old.push(tensor(&format!("norm.{i}.running_mean"), &[8]));
            old.push(tensor(&format!("norm.{i}.running_var"), &[8]));
        }
        let (named, report) = match_generator(old, None).unwrap();
        assert_eq!((report.dropped_running_stats, report.affine_norm, named.len()), (2, false, 2 * 18));
    }
}
