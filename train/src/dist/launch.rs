//! `--nproc N`: starts N ranks of a command on this machine, with the environment torchrun
//! gives its workers, and waits for them; when one fails the others are given the run's timeout
//! to notice and stop, then killed.
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// This command's arguments without `--nproc N`: what each rank it starts runs.
fn rank_arguments() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--nproc" {
            args.next();
        } else if !a.to_string_lossy().starts_with("--nproc=") {
            out.push(a);
        }
    }
    out
}

/// `--nproc N`: runs N ranks of this very command (the process's own program and arguments,
/// less `--nproc`) and returns the run's exit code.
pub fn this_command(nproc: usize, timeout: Duration) -> Result<i32> {
    let usage = |message: String| Error::InvalidValue { key: "--nproc".into(), message };
    if nproc == 0 {
        return Err(usage("0: give the number of ranks to start (1 or more)".into()));
    }
    if super::World::from_env()?.is_some() {
        return Err(usage(format!(
            "{nproc} under torchrun (RANK and WORLD_SIZE are set): let torchrun start the ranks"
        )));
    }
    let program = std::env::current_exe().map_err(|e| Error::io("cannot find this program to start its ranks", e))?;
    local(&program, &rank_arguments(), nproc, timeout)
}

/// A free TCP port on the loopback interface for the rendezvous.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("cannot find a free port on 127.0.0.1 for the ranks' rendezvous", e))?;
    Ok(listener.local_addr().map_err(|e| Error::io("cannot read the rendezvous port", e))?.port())
}

/// Runs `program args` as ranks 0..nproc; returns the exit code of the run: 0, or that of the
/// first rank that failed.
pub fn local(program: &Path, args: &[OsString], nproc: usize, timeout: Duration) -> Result<i32> {
    let port = free_port()?.to_string();
    let mut children: Vec<Child> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = Command::new(program)
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .spawn()
            .map_err(|e| Error::io(format!("cannot start rank {rank} ({})", program.display()), e));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for c in &mut children {
                    let _ = c.kill();
                }
                return Err(e);
            }
        }
    }
    let mut status: Vec<Option<i32>> = vec![None; nproc];
    let mut failed: Option<(usize, i32, Instant)> = None;
    loop {
        for (rank, child) in children.iter_mut().enumerate() {
            if status[rank].is_some() {
                continue;
            }
            if let Some(s) = child.try_wait().map_err(|e| Error::io(format!("cannot wait for rank {rank}"), e))? {
                // Killed by a signal: 128 + its number, as a shell reports it.
                let code = s.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + s.signal().unwrap_or(0)
                });
                status[rank] = Some(code);
                if code != 0 && failed.is_none() {
                    eprintln!("rank {rank} exited with status {code}; the other ranks stop when they notice");
                    failed = Some((rank, code, Instant::now()));
                }
            }
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        if let Some((_, _, since)) = failed
            && since.elapsed() > timeout + Duration::from_secs(30)
        {
            for (rank, child) in children.iter_mut().enumerate() {
                if status[rank].is_none() {
                    eprintln!("rank {rank} did not stop within the timeout: killed");
                    let _ = child.kill();
                    status[rank] = child.wait().ok().and_then(|s| s.code()).or(Some(137));
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(failed.map_or(0, |(_, code, _)| code))
}
