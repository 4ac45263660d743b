//! `datasets list|get`: the reference project's unpaired datasets by name, as
//! `ROOT/NAME/{trainA,trainB,testA,testB}`, downloaded resumably and checked after unpacking.
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use cyclegan_hub::catalog::{self, DATASETS};
use cyclegan_hub::dataset::{self, unpack};
use cyclegan_hub::download::{Download, download, parse_sha256, sha256_file};

#[derive(Subcommand)]
pub enum DatasetsCommand {
    /// The reference project's unpaired datasets and which are already under --root
    List {
        /// Where datasets are unpacked.
        #[arg(long, default_value = "datasets")]
        root: PathBuf,
    },
    /// Download one (resumable), unpack it into ROOT/NAME and check every image:
    /// `datasets get summer2winter_yosemite` (the default --dataroot of `fit`)
    Get {
        /// The dataset's name (`datasets list`).
        name: String,
        /// Where to unpack it: ROOT/NAME.
        #[arg(long, default_value = "datasets")]
        root: PathBuf,
        /// Download the zip from here instead (a mirror); $CYCLEGAN_MIRROR replaces the server
        /// for every name.
        #[arg(long)]
        url: Option<String>,
        /// The SHA-256 the zip must have (printed by an earlier `get`).
        #[arg(long)]
        sha256: Option<String>,
        /// The cache's root, where the zip waits while it downloads (default: $CYCLEGAN_CACHE_DIR,
        /// else ~/.cache/cyclegan-edge).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Keep the zip in the cache after unpacking (default: removed, as it doubles the space).
        #[arg(long)]
        keep_archive: bool,
    },
}

pub fn run(command: DatasetsCommand) -> Result<()> {
    match command {
        DatasetsCommand::List { root } => {
            list(&root);
            Ok(())
        }
        DatasetsCommand::Get { name, root, url, sha256, cache_dir, keep_archive } => {
            get(&name, &root, url, sha256.as_deref(), cache_dir.as_deref(), keep_archive)
        }
    }
}

fn list(root: &Path) {
    println!("{:<24} {:<22} {:<10} note", "name", "trainA -> trainB", "here");
    for d in DATASETS {
        let here = if root.join(d.name).is_dir() { "yes" } else { "-" };
        let note = d.unavailable.map_or(String::new(), |why| format!("not on the server: {why}"));
        println!("{:<24} {:<22} {here:<10} {note}", d.name, format!("{} -> {}", d.domain_a, d.domain_b));
    }
    println!("\nfrom {}/datasets/NAME.zip; unpacked into {}/NAME", catalog::server(), root.display());
}

fn get(
    name: &str,
    root: &Path,
    url: Option<String>,
    sha256: Option<&str>,
    cache_dir: Option<&Path>,
    keep_archive: bool,
) -> Result<()> {
    let entry = catalog::dataset_named(name)?;
    let target = root.join(entry.name);
    let unpacked = if target.exists() {
        let found = dataset::check(&target)?;
        println!("{} is already there", target.display());
        found
    } else {
        let url = url.unwrap_or_else(|| entry.url());
        let zip = cyclegan_hub::cache::datasets(cache_dir).join(format!("{}.zip", entry.name));
        if zip.exists()
            && let Some(pinned) = sha256
            && sha256_file(&zip)? != parse_sha256(pinned)?
        {
            std::fs::remove_file(&zip)?;
        }
        if !zip.exists() {
            download(&Download { sha256, ..Download::new(&url, &zip) })?;
        }
        let unpacked = unpack(&zip, root, entry.name).inspect_err(|e| {
            // A complete download that is not a dataset must not be unpacked again next time.
            if matches!(e, cyclegan_hub::Error::Archive { .. }) {
                let _ = std::fs::remove_file(&zip);
            }
        })?;
        if !keep_archive {
            let _ = std::fs::remove_file(&zip);
        }
        unpacked
    };
    println!("{}: {} ({} -> {})", unpacked.dir.display(), unpacked.summary(), entry.domain_a, entry.domain_b);
    println!(
        "train on it: cyclegan-train fit --dataroot {} --domain-a {} --domain-b {}",
        unpacked.dir.display(),
        entry.domain_a,
        entry.domain_b
    );
    Ok(())
}
