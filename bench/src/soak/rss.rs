//! The memory of the soak's processes: their resident sets (`VmRSS` in `/proc/PID/status`),
//! sampled when the run starts and at every tenth of progress.

use std::time::Instant;

use serde::Serialize;

use crate::fmt::mib;

/// Samples the resident sets of the run's processes.
pub(crate) struct Sampler {
    /// The processes' names, in the order of their pids in [`Sampler::sample`].
    names: [&'static str; 3],
    /// KiB per sample, per process.
    kib: [Vec<u64>; 3],
    /// When sampling began.
    began: Instant,
    /// Whether to print every sample on stderr.
    verbose: bool,
}

impl Sampler {
    /// A sampler of the processes `names`, beginning now.
    pub(crate) fn new(names: [&'static str; 3], verbose: bool) -> Self {
        Sampler {
            names,
            kib: Default::default(),
            began: Instant::now(),
            verbose,
        }
    }

    /// Samples the processes `pids` (in the order of the names) at `tenth` of progress.
    pub(crate) fn sample(&mut self, pids: [u32; 3], tenth: u32) -> Result<(), String> {
        for ((name, pid), kib) in self.names.iter().zip(pids).zip(&mut self.kib) {
            kib.push(rss_kib(pid).map_err(|e| format!("{name}: {e}"))?);
        }
        if self.verbose {
            let now: Vec<String> = self
                .kib
                .iter()
                .map(|s| format!("{:.1}", mib(*s.last().unwrap_or(&0))))
                .collect();
            eprintln!(
                "{:>4}% at {:>7.2} s: RSS MiB hub/producer/consumer {}",
                tenth * 10,
                self.began.elapsed().as_secs_f64(),
                now.join(" / ")
            );
        }
        Ok(())
    }

    /// The samples of every process; there must be one at 0 %, 10 %, …, 100 %.
    pub(crate) fn finish(self) -> Vec<RssSamples> {
        self.names
            .into_iter()
            .zip(self.kib)
            .map(|(process, kib)| {
                let end_over_warm = kib[10] as f64 / kib[1].max(1) as f64;
                RssSamples {
                    process,
                    kib,
                    end_over_warm,
                }
            })
            .collect()
    }
}

/// The resident set of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The `VmRSS` figure of a `/proc/PID/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// The RSS samples of one process.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RssSamples {
    /// The process (`hub`, `producer`, `consumer`).
    pub(crate) process: &'static str,
    /// KiB at 0 %, 10 %, …, 100 % of progress.
    pub(crate) kib: Vec<u64>,
    /// The last sample ÷ the one at 10 %.
    pub(crate) end_over_warm: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_parsed() {
        let status = "Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t    5632 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(5632));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_ok_and(|kib| kib > 0));
    }
}
