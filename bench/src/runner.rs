//! What the runners of `local` and `compare` share: choosing the workloads `--only` names and
//! running each of them to the end, and the warm-up and alternation of a workload's two
//! sides.

use std::process::ExitCode;

/// The workloads `only` selects: all of them without `only`; the one named `only` if there is
/// one (a name may be a prefix of another: `reports_1_to_1`, `reports_1_to_10`); else every
/// one whose name contains `only`. Fails when none matches.
fn select<'a, W>(
    all: &'a [W],
    name: impl Fn(&W) -> &str,
    only: Option<&str>,
) -> Result<Vec<&'a W>, String> {
    let selected: Vec<&W> = match only {
        None => all.iter().collect(),
        Some(only) if all.iter().any(|w| name(w) == only) => {
            all.iter().filter(|w| name(w) == only).collect()
        }
        Some(only) => all.iter().filter(|w| name(w).contains(only)).collect(),
    };
    if selected.is_empty() {
        return Err(format!("no workload matches {:?}", only.unwrap_or("")));
    }
    Ok(selected)
}

/// One side of a workload for [`alternate`].
pub(crate) struct Contender<'a, T> {
    /// Its name in error messages (`netsvc`, `baseline`, `NATS`).
    pub(crate) label: &'static str,
    /// One run of it; `None` when this side does not run.
    pub(crate) run: Option<&'a dyn Fn() -> Result<T, String>>,
}

/// `warmups` discarded runs of each side, then `reps` rounds of one run of each side, in an
/// order drawn at random per round ([`draw`]): interference from the rest of the machine then
/// falls on every side alike, and no side always runs on a machine another has just warmed
/// up (or left busy). The first failure ends it, prefixed with its side's label.
pub(crate) fn alternate<T, const N: usize>(
    warmups: usize,
    reps: usize,
    sides: &[Contender<'_, T>; N],
) -> Result<[Vec<T>; N], String> {
    alternate_with(warmups, reps, sides, draw())
}

/// [`alternate`], with `below(n)` drawing a number in `0..n` for the shuffle (Fisher–Yates)
/// of each round's order.
fn alternate_with<T, const N: usize>(
    warmups: usize,
    reps: usize,
    sides: &[Contender<'_, T>; N],
    mut below: impl FnMut(usize) -> usize,
) -> Result<[Vec<T>; N], String> {
    for _ in 0..warmups {
        for side in sides {
            if let Some(run) = side.run {
                run().map_err(|e| format!("{} warm-up: {e}", side.label))?;
            }
        }
    }
    let mut runs: [Vec<T>; N] = std::array::from_fn(|_| Vec::with_capacity(reps));
    for _ in 0..reps {
        let mut order: [usize; N] = std::array::from_fn(|i| i);
        for i in (1..N).rev() {
            order.swap(i, below(i + 1));
        }
        for i in order {
            if let Some(run) = sides[i].run {
                runs[i].push(run().map_err(|e| format!("{}: {e}", sides[i].label))?);
            }
        }
    }
    Ok(runs)
}

/// Uniform draws in `0..n` for the order of a round's sides: xorshift64 seeded from the
/// clock (the order only has to be unpredictable to the machine's rhythm, not to anyone).
fn draw() -> impl FnMut(usize) -> usize {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
    let mut state = seed | 1;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // The high bits are the best mixed; the bias of `%` for n ≤ 3 is 2^-62.
        ((state >> 32) % n.max(1) as u64) as usize
    }
}

/// Runs `each` for every workload `only` selects (see [`select`]), in turn, after `heading`.
/// A failure is printed (`error: <name>: <message>`) and makes the exit status a failure;
/// the workloads after it still run. Nothing runs when no workload matches.
pub(crate) fn run_all<W>(
    all: &[W],
    name: impl Fn(&W) -> &str,
    only: Option<&str>,
    heading: impl FnOnce(),
    mut each: impl FnMut(&W) -> Result<(), String>,
) -> ExitCode {
    let selected = match select(all, &name, only) {
        Ok(selected) => selected,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    heading();
    let mut failed = false;
    for workload in selected {
        if let Err(e) = each(workload) {
            eprintln!("error: {}: {e}", name(workload));
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_name_selects_that_workload_alone() {
        let all = ["reports_1_to_1", "reports_1_to_10", "request_reply"];
        let pick = |only| select(&all, |w| w, only).map(|v| v.into_iter().copied().collect());
        assert_eq!(pick(None), Ok(all.to_vec()));
        assert_eq!(pick(Some("reports_1_to_1")), Ok(vec!["reports_1_to_1"]));
        assert_eq!(
            pick(Some("reports")),
            Ok(vec!["reports_1_to_1", "reports_1_to_10"])
        );
        assert_eq!(
            pick(Some("zzz")),
            Err("no workload matches \"zzz\"".to_owned())
        );
    }

    #[test]
    fn the_draws_give_every_order() {
        let mut draw = draw();
        let heads = (0..1000).filter(|_| draw(2) == 0).count();
        assert!((400..=600).contains(&heads), "{heads} of 1000");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut order = [0, 1, 2];
            for i in (1..3).rev() {
                order.swap(i, draw(i + 1));
            }
            seen.insert(order);
        }
        assert_eq!(seen.len(), 6, "every order of three sides: {seen:?}");
    }

    #[test]
    fn each_round_runs_both_sides_in_the_order_drawn() {
        let order = std::cell::RefCell::new(Vec::new());
        let a = || {
            order.borrow_mut().push("a");
            Ok(1)
        };
        let b = || {
            order.borrow_mut().push("b");
            Ok(2)
        };
        let sides = [
            Contender {
                label: "a",
                run: Some(&a as &dyn Fn() -> Result<i32, String>),
            },
            Contender {
                label: "b",
                run: Some(&b),
            },
        ];
        let mut flips = [false, true, true].into_iter();
        // Drawing 0 for the last place swaps the two sides: the second runs first.
        let runs = alternate_with(1, 3, &sides, |_| usize::from(!flips.next().unwrap()));
        assert_eq!(runs, Ok([vec![1, 1, 1], vec![2, 2, 2]]));
        assert_eq!(*order.borrow(), ["a", "b", "a", "b", "b", "a", "b", "a"]);
    }

    #[test]
    fn sides_alternate_after_the_warm_up() {
        let order = std::cell::RefCell::new(Vec::new());
        let a = || {
            order.borrow_mut().push("a");
            Ok(1)
        };
        let b = || {
            order.borrow_mut().push("b");
            Ok(2)
        };
        let runs = alternate_with(
            1,
            2,
            &[
                Contender {
                    label: "a",
                    run: Some(&a),
                },
                Contender {
                    label: "b",
                    run: Some(&b),
                },
            ],
            |n| n - 1,
        );
        assert_eq!(runs, Ok([vec![1, 1], vec![2, 2]]));
        assert_eq!(*order.borrow(), ["a", "b", "a", "b", "a", "b"]);
        let fail = || Err::<u8, _>("boom".to_owned());
        let only_b = [
            Contender {
                label: "a",
                run: None,
            },
            Contender {
                label: "b",
                run: Some(&fail),
            },
        ];
        assert_eq!(alternate(1, 1, &only_b), Err("b warm-up: boom".to_owned()));
        assert_eq!(alternate(0, 1, &only_b), Err("b: boom".to_owned()));
    }
}
