//! `losses.csv`: iteration, epoch, learning rate, the job's losses and throughput.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct LossRow {
    pub iteration: u64,
    pub epoch: usize,
    pub lr: f64,
    /// In the order of the log's names.
    pub losses: Vec<f64>,
    pub images_per_s: f64,
}

pub struct LossLog {
    path: PathBuf,
    file: File,
    pub rows: Vec<LossRow>,
}

fn header(names: &[&str]) -> String {
    format!("iteration,epoch,lr,{},images_per_s", names.join(","))
}

impl LossLog {
    /// Opens `path` for losses called `names`, keeping only rows up to `iteration` (later rows
    /// belong to steps a resumed run repeats).
    pub fn open(path: &Path, names: &[&str], iteration: u64) -> Result<Self> {
        let mut rows = Vec::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines().skip(1).map_while(|l| l.ok()) {
                if let Some(row) = parse(&line, names.len()).filter(|r| r.iteration <= iteration) {
                    rows.push(row);
                }
            }
        }
        let mut text = header(names) + "\n";
        for r in &rows {
            text += &format_row(r);
        }
        cyclegan_onnx::io::write_atomic(path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("cannot append to {}", path.display()), e))?;
        Ok(Self { path: path.to_path_buf(), file, rows })
    }

    pub fn push(&mut self, row: LossRow) -> Result<()> {
        self.file
            .write_all(format_row(&row).as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(format!("cannot append to {}", self.path.display()), e))?;
        self.rows.push(row);
        Ok(())
    }
}

fn format_row(r: &LossRow) -> String {
    let losses: Vec<String> = r.losses.iter().map(|v| format!("{v:.6}")).collect();
    format!("{},{},{:e},{},{:.3}\n", r.iteration, r.epoch, r.lr, losses.join(","), r.images_per_s)
}

fn parse(line: &str, losses: usize) -> Option<LossRow> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != losses + 4 {
        return None;
    }
    Some(LossRow {
        iteration: f[0].parse().ok()?,
        epoch: f[1].parse().ok()?,
        lr: f[2].parse().ok()?,
        losses: f[3..3 + losses].iter().map(|s| s.parse().ok()).collect::<Option<_>>()?,
        images_per_s: f[3 + losses].parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_drops_rows_after_the_resume_point() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("losses.csv");
        let names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"].as_slice();
        let mut log = LossLog::open(&path, names, 0).unwrap();
        for i in 1..=4 {
            let row = LossRow { iteration: i, epoch: 1, lr: 2e-4, losses: vec![i as f64; 8], images_per_s: 1.5 };
            log.push(row).unwrap();
        }
        let log = LossLog::open(&path, names, 2).unwrap();
        assert_eq!(log.rows.len(), 2);
        assert_eq!(log.rows[1].losses[7], 2.0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("iteration,epoch,lr,D_A,G_A,cycle_A,idt_A,D_B,G_B,cycle_B,idt_B,images_per_s\n"));
        assert_eq!(text.lines().count(), 3);
    }
}
