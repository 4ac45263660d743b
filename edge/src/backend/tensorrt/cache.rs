//! The engine cache: an engine is only valid for the ONNX, TensorRT version, GPU, precision,
//! shape profile, calibration cache and workspace it was built with, so each engine file has a
//! key file beside it and is rebuilt (never loaded, never crashed on) when any of them differs.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::library::Version;
use super::options::{InstanceNorm, Precision, Profile, Shape};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineKey {
    /// SHA-256 of the ONNX bytes as given (before any FP16 conversion).
    pub onnx_sha256: String,
    pub tensorrt: Version,
    pub gpu: String,
    pub compute_capability: (i32, i32),
    /// The GPU's multiprocessors and memory (MiB): GPUs of one name and compute capability (an
    /// Orin Nano and an AGX Orin) differ there, and TensorRT picks tactics for the one it builds on.
    /// (Keys written before these fields read as 0: such engines are rebuilt once.)
    #[serde(default)]
    pub multiprocessors: i32,
    #[serde(default)]
    pub memory_mib: u64,
    pub precision: Precision,
    pub profile: Profile,
    /// SHA-256 of the INT8 calibration cache the engine was built with (TensorRT 10's implicit
    /// INT8); None without one.
    #[serde(default)]
    pub calibration_cache_sha256: Option<String>,
    /// The builder's workspace limit: a larger one may allow faster tactics.
    #[serde(default)]
    pub workspace_mib: u64,
    #[serde(default)]
    pub instance_norm: InstanceNorm,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl EngineKey {
    /// A file name for the cache folder: readable, and unique per key.
    pub fn file_name(&self, model_name: &str) -> String {
        let json = serde_json::to_vec(self).expect("a key serializes");
        let stem: String = model_name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!(
            "{stem}-{}-{}-{}.engine",
            self.precision,
            self.profile.describe().replace(':', "_"),
            &sha256_hex(&json)[..12]
        )
    }

    /// Why an engine built for `self` cannot serve `wanted` (None: it can).
    pub fn mismatch(&self, wanted: &EngineKey) -> Option<String> {
        let mut why = Vec::new();
        if self.onnx_sha256 != wanted.onnx_sha256 {
            why.push("the ONNX file changed".to_string());
        }
        if self.tensorrt != wanted.tensorrt {
            why.push(format!("built by TensorRT {}, this is {}", self.tensorrt, wanted.tensorrt));
        }
        let device = |k: &EngineKey| {
            let (major, minor) = k.compute_capability;
            format!("{} (compute {major}.{minor}, {} SMs, {} MiB)", k.gpu, k.multiprocessors, k.memory_mib)
        };
        if device(self) != device(wanted) {
            why.push(format!("built for {}, this is {}", device(self), device(wanted)));
        }
        if self.precision != wanted.precision {
            why.push(format!("built for {}, {} asked", self.precision, wanted.precision));
        }
        if self.profile != wanted.profile {
            why.push(format!("built for shapes {}, {} asked", self.profile.describe(), wanted.profile.describe()));
        }
        if self.calibration_cache_sha256 != wanted.calibration_cache_sha256 {
            why.push("built with another INT8 calibration cache".to_string());
        }
        if self.instance_norm != wanted.instance_norm {
            why.push(format!("built with the {:?} InstanceNorm, {:?} asked", self.instance_norm, wanted.instance_norm));
        }
        if self.workspace_mib != wanted.workspace_mib {
            why.push(format!("built with a {} MiB workspace, {} MiB asked", self.workspace_mib, wanted.workspace_mib));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// The key file of an engine: `G.engine` -> `G.engine.json`.
pub fn key_path(engine: &Path) -> PathBuf {
    let mut name = engine.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// What the cache holds for `key` at `engine`.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Fresh,
    Missing,
    /// An engine is there but was built for something else (the reason says what).
    Stale(String),
}

pub fn lookup(engine: &Path, key: &EngineKey) -> Lookup {
    if !engine.is_file() {
        return Lookup::Missing;
    }
    let Ok(text) = std::fs::read_to_string(key_path(engine)) else {
        return Lookup::Stale(format!("{} has no key file", engine.display()));
    };
    match serde_json::from_str::<EngineKey>(&text) {
        Ok(built) => match built.mismatch(key) {
            None => Lookup::Fresh,
            Some(why) => Lookup::Stale(why),
        },
        Err(e) => Lookup::Stale(format!("its key file is unreadable ({e})")),
    }
}

/// The engines in `dir` (files with a key beside them), in name order.
pub fn engines_in(dir: &Path) -> Vec<PathBuf> {
    let mut engines: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "engine") && key_path(path).is_file())
        .collect();
    engines.sort();
    engines
}

/// Among `engines`, one built for `key` in everything but its shapes, whose profile covers
/// `shape` (one tuned for exactly that shape first), and that profile: a prebuilt engine serves
/// a frame it was built to take instead of being rebuilt for that frame alone.
pub fn covering(engines: &[PathBuf], key: &EngineKey, shape: Shape) -> Option<(PathBuf, Profile)> {
    let usable: Vec<(PathBuf, Profile)> = engines
        .iter()
        .filter(|engine| engine.is_file())
        .filter_map(|engine| {
            let built: EngineKey = serde_json::from_str(&std::fs::read_to_string(key_path(engine)).ok()?).ok()?;
            let same = built.mismatch(&EngineKey { profile: built.profile, ..key.clone() }).is_none();
            (same && built.profile.covers(shape)).then(|| (engine.clone(), built.profile))
        })
        .collect();
    usable.iter().find(|(_, profile)| profile.opt == shape).or(usable.first()).cloned()
}

/// Writes `bytes` atomically (temporary file, sync, rename), creating the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Invalid(format!("creating {}: {e}", dir.display())))?;
    }
    cyclegan_onnx::io::write_atomic(path, bytes).map_err(|e| Error::Invalid(e.to_string()))
}

/// Stores an engine and then its key: an engine without a key is rebuilt, never trusted.
pub fn store(engine: &Path, bytes: &[u8], key: &EngineKey) -> Result<()> {
    let _ = std::fs::remove_file(key_path(engine));
    write_atomic(engine, bytes)?;
    write_atomic(&key_path(engine), serde_json::to_string_pretty(key).expect("a key serializes").as_bytes())
}

/// The engines' folder of the cache (`cyclegan_hub::cache`): `~/.cache/cyclegan-edge/engines`.
pub fn default_dir() -> PathBuf {
    cyclegan_hub::cache::engines(None)
}

/// An exclusive hold on building one engine file, across threads and processes (`flock` on
/// `ENGINE.lock` beside it): streams or camera services that start together with no engine yet
/// build it once, the others waiting and then loading it. Released when dropped.
pub struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    /// Takes the lock on `engine`'s build; `waiting` is called first where another holds it.
    pub fn acquire(engine: &Path, waiting: impl FnOnce()) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let path = engine.with_extension("lock");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let lock = |flags| {
            // SAFETY: flock on a descriptor this function owns.
            let status = unsafe { libc::flock(file.as_raw_fd(), flags) };
            if status == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        };
        match lock(libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                waiting();
                lock(libc::LOCK_EX).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
            }
            Err(e) => return Err(Error::Invalid(format!("{}: {e}", path.display()))),
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EngineKey {
        EngineKey {
            onnx_sha256: sha256_hex(b"model"),
            tensorrt: Version { major: 10, minor: 3, patch: 0 },
            gpu: "Orin".into(),
            compute_capability: (8, 7),
            multiprocessors: 16,
            memory_mib: 61_440,
            precision: Precision::Fp16,
            profile: Profile::fixed([1, 3, 256, 256]),
            calibration_cache_sha256: None,
            workspace_mib: 1024,
            instance_norm: InstanceNorm::Native,
        }
    }

    #[test]
    fn every_field_of_the_key_invalidates_an_engine() {
        let k = key();
        assert_eq!(k.mismatch(&k), None);
        let changes: Vec<(EngineKey, &str)> = vec![
            (EngineKey { onnx_sha256: sha256_hex(b"other"), ..key() }, "ONNX file changed"),
            (
                EngineKey { tensorrt: Version { major: 10, minor: 7, patch: 0 }, ..key() },
                "TensorRT 10.3.0, this is 10.7.0",
            ),
            (
                EngineKey { gpu: "NVIDIA RTX 4090".into(), compute_capability: (8, 9), ..key() },
                "this is NVIDIA RTX 4090 (compute 8.9, 16 SMs, 61440 MiB)",
            ),
            (EngineKey { precision: Precision::Int8, ..key() }, "built for fp16, int8 asked"),
            (EngineKey { profile: Profile::fixed([1, 3, 360, 640]), ..key() }, "256x256, 640x360 asked"),
            // An Orin Nano: the AGX Orin's name and compute capability, half its SMs.
            (
                EngineKey { multiprocessors: 8, memory_mib: 7_620, ..key() },
                "this is Orin (compute 8.7, 8 SMs, 7620 MiB)",
            ),
            (
                EngineKey { calibration_cache_sha256: Some(sha256_hex(b"cache")), ..key() },
                "another INT8 calibration cache",
            ),
            (EngineKey { workspace_mib: 4096, ..key() }, "1024 MiB workspace, 4096 MiB asked"),
            (EngineKey { instance_norm: InstanceNorm::Plugin, ..key() }, "the Native InstanceNorm, Plugin asked"),
        ];
        for (wanted, expected) in changes {
            let why = k.mismatch(&wanted).expect("a mismatch");
            assert!(why.contains(expected), "{why}");
            assert_ne!(k.file_name("G"), wanted.file_name("G"));
        }
    }

    #[test]
    fn an_engine_whose_profile_covers_the_frame_serves_it() {
        let dir = tempfile::tempdir().unwrap();
        let frame = [1, 3, 360, 640];
        let wide = EngineKey { profile: Profile::parse("256x144:1280x720:1920x1080", "-").unwrap(), ..key() };
        let tuned = EngineKey { profile: Profile::parse("256x144:640x360:1280x720", "-").unwrap(), ..key() };
        let small = EngineKey { profile: Profile::fixed([1, 3, 256, 256]), ..key() };
        let elsewhere = EngineKey { gpu: "Thor".into(), compute_capability: (11, 0), ..wide.clone() };
        let int8 = EngineKey { precision: Precision::Int8, ..tuned.clone() };
        for (name, k) in [("a", &wide), ("b", &small), ("c", &elsewhere), ("d", &int8)] {
            store(&dir.path().join(format!("{name}.engine")), b"plan", k).unwrap();
        }
        std::fs::write(dir.path().join("e.engine"), b"plan without a key").unwrap();
        let engines = engines_in(dir.path());
        assert_eq!(engines.len(), 4, "{engines:?}");
        // What the element asks on a 640x360 frame: the key of a fixed engine for it.
        let wanted = EngineKey { profile: Profile::fixed(frame), ..key() };
        assert_eq!(covering(&engines, &wanted, frame), Some((dir.path().join("a.engine"), wide.profile)));
        // One tuned for the frame's shape wins over a merely covering one.
        store(&dir.path().join("f.engine"), b"plan", &tuned).unwrap();
        let engines = engines_in(dir.path());
        assert_eq!(covering(&engines, &wanted, frame), Some((dir.path().join("f.engine"), tuned.profile)));
        // Only an engine of the same model, precision and GPU serves; nothing covers a 4K frame.
        let wanted_int8 = EngineKey { precision: Precision::Int8, ..wanted.clone() };
        assert_eq!(covering(&engines, &wanted_int8, frame), Some((dir.path().join("d.engine"), tuned.profile)));
        let other_model = EngineKey { onnx_sha256: sha256_hex(b"other"), ..wanted.clone() };
        assert_eq!(covering(&engines, &other_model, frame), None);
        assert_eq!(covering(&engines, &wanted, [1, 3, 2160, 3840]), None);
    }

    #[test]
    fn lookup_trusts_only_an_engine_with_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join(key().file_name("summer2winter.onnx"));
        assert!(engine.file_name().unwrap().to_str().unwrap().starts_with("summer2winter_onnx-fp16-256x256-"));
        assert_eq!(lookup(&engine, &key()), Lookup::Missing);
        std::fs::write(&engine, b"plan").unwrap();
        assert!(matches!(lookup(&engine, &key()), Lookup::Stale(why) if why.contains("no key file")));
        store(&engine, b"plan", &key()).unwrap();
        assert_eq!(lookup(&engine, &key()), Lookup::Fresh);
        let other = EngineKey { gpu: "Thor".into(), compute_capability: (11, 0), ..key() };
        assert!(matches!(lookup(&engine, &other), Lookup::Stale(why) if why.contains("built for Orin")));
        // A key written before the GPU's size and the build settings were in it: rebuilt, and why.
        let mut old: serde_json::Value = serde_json::to_value(key()).unwrap();
        for field in ["multiprocessors", "memory_mib", "calibration_cache_sha256", "workspace_mib"] {
            old.as_object_mut().unwrap().remove(field);
        }
        std::fs::write(key_path(&engine), old.to_string()).unwrap();
        assert!(
            matches!(lookup(&engine, &key()), Lookup::Stale(why) if why.contains("0 SMs") && why.contains("workspace"))
        );
        std::fs::write(key_path(&engine), b"{").unwrap();
        assert!(matches!(lookup(&engine, &key()), Lookup::Stale(why) if why.contains("unreadable")));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }

    #[test]
    fn one_builder_at_a_time_holds_an_engine_and_the_next_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("engines/g.engine");
        let first = BuildLock::acquire(&engine, || panic!("nobody holds it yet")).unwrap();
        let (told, heard) = std::sync::mpsc::channel();
        let second = std::thread::spawn({
            let engine = engine.clone();
            move || {
                let _held = BuildLock::acquire(&engine, || told.send("waiting").unwrap()).unwrap();
                std::time::Instant::now()
            }
        });
        assert_eq!(heard.recv().unwrap(), "waiting");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let released = std::time::Instant::now();
        drop(first);
        assert!(second.join().unwrap() >= released, "the second took the lock while the first held it");
        // Free again: taken without waiting.
        BuildLock::acquire(&engine, || panic!("released")).unwrap();
    }
}
