//! Named one-shot timers, alarms and recurring actions of one service.
//!
//! Each kind has its own namespace; re-using a name replaces the pending one. All of them
//! call [`Service::timer`] with their name. A one-shot timer or alarm is forgotten once it
//! has fired; a recurring action stays until cancelled.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use actix::{AsyncContext, SpawnHandle};

use super::context::Working;
use super::task::Runtime;
use super::{Service, ServiceContext};
use crate::schedule::Schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Timer,
    Alarm,
    Action,
}

#[derive(Default)]
pub(crate) struct Timers {
    pending: HashMap<(Kind, String), SpawnHandle>,
    schedules: HashMap<String, Schedule>,
}

impl Timers {
    pub(crate) fn cancel_everything<S: actix::Actor<Context = ServiceContext<S>>>(
        &mut self,
        rt: &mut Runtime<S>,
    ) {
        self.schedules.clear();
        for (_, handle) in self.pending.drain() {
            rt.cancel_future(handle);
        }
    }
}

impl<S: Service> ServiceContext<S> {
    fn arm(&mut self, kind: Kind, name: String, delay: Duration) {
        self.disarm(kind, &name);
        let key = (kind, name);
        let fire_key = key.clone();
        let handle = self.run_later(delay, move |service, ctx| {
            if kind != Kind::Action {
                ctx.core.work().timers.pending.remove(&fire_key);
            }
            let name = fire_key.1;
            if kind == Kind::Action {
                ctx.rearm_action(name.clone());
            }
            ctx.guarded(service, "timer", |s, c| s.timer(&name, c));
        });
        self.core.work().timers.pending.insert(key, handle);
    }

    fn disarm(&mut self, kind: Kind, name: &str) -> bool {
        let key = (kind, name.to_owned());
        let pending = self.core.worked_mut().map(|w| &mut w.timers.pending);
        match pending.and_then(|p| p.remove(&key)) {
            Some(handle) => self.rt.cancel_future(handle),
            None => false,
        }
    }

    fn disarm_all(&mut self, kind: Kind) {
        let Some(work) = self.core.worked() else {
            return;
        };
        let keys: Vec<(Kind, String)> = (work.timers.pending.keys())
            .filter(|k| k.0 == kind)
            .cloned()
            .collect();
        for key in keys {
            self.disarm(kind, &key.1);
        }
    }

    /// Starts (or restarts) the one-shot timer `name`; [`Service::timer`] is called with the
    /// name after `delay`.
    pub fn start_timer(&mut self, name: impl Into<String>, delay: Duration) {
        self.arm(Kind::Timer, name.into(), delay)
    }

    /// Cancels a pending timer; returns whether one was pending.
    pub fn cancel_timer(&mut self, name: &str) -> bool {
        self.disarm(Kind::Timer, name)
    }

    /// Cancels every pending timer.
    pub fn cancel_all_timers(&mut self) {
        self.disarm_all(Kind::Timer)
    }

    /// Whether the timer `name` is pending.
    pub fn timer_pending(&self, name: &str) -> bool {
        self.core
            .worked()
            .is_some_and(|w| (w.timers.pending).contains_key(&(Kind::Timer, name.to_owned())))
    }

    /// Sets (or resets) the alarm `name` for an absolute time; a time in the past fires at
    /// once.
    pub fn set_alarm(&mut self, name: impl Into<String>, at: SystemTime) {
        let delay = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        self.arm(Kind::Alarm, name.into(), delay)
    }

    /// Cancels a pending alarm; returns whether one was pending.
    pub fn cancel_alarm(&mut self, name: &str) -> bool {
        self.disarm(Kind::Alarm, name)
    }

    /// Cancels every pending alarm.
    pub fn cancel_all_alarms(&mut self) {
        self.disarm_all(Kind::Alarm)
    }

    /// Schedules the recurring action `name` (replacing one of the same name); it fires
    /// until cancelled.
    pub fn schedule_action(&mut self, name: impl Into<String>, schedule: Schedule) {
        let name = name.into();
        self.core
            .work()
            .timers
            .schedules
            .insert(name.clone(), schedule);
        self.rearm_action(name);
    }

    fn rearm_action(&mut self, name: String) {
        let core = &mut self.core;
        // `core.work()` would borrow all of `core`; the binding is needed below.
        let schedules = &mut core
            .work
            .get_or_insert_with(Working::boxed)
            .timers
            .schedules;
        let delay = match schedules.get(&name) {
            Some(Schedule::Every(d)) => *d,
            Some(Schedule::Cron(c)) => match c.delay_from_now() {
                Some(d) => d,
                None => {
                    tracing::warn!(service = %core.binding, action = %name, cron = c.as_str(), "cron expression names no future time; action dropped");
                    schedules.remove(&name);
                    return;
                }
            },
            None => return,
        };
        self.arm(Kind::Action, name, delay)
    }

    /// Cancels a recurring action; returns whether it was scheduled.
    pub fn cancel_action(&mut self, name: &str) -> bool {
        if let Some(work) = self.core.worked_mut() {
            work.timers.schedules.remove(name);
        }
        self.disarm(Kind::Action, name)
    }

    /// Cancels every recurring action.
    pub fn cancel_all_actions(&mut self) {
        if let Some(work) = self.core.worked_mut() {
            work.timers.schedules.clear();
        }
        self.disarm_all(Kind::Action)
    }
}
