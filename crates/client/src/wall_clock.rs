//! Wall-clock labels for the UI: "14:05" or "2:05 PM" in the agent's time
//! zone, and "2026-11-20 14:05" for things from other days.
//!
//! Why here and not in the webview: formatting a time in the page, even
//! with one shared `Intl.DateTimeFormat` (or only `Date#getHours`), makes
//! WebKitGTK's web process load ICU's time-zone, calendar and locale data
//! and keep it for the rest of the day: 3.5 MiB of the web process,
//! measured in issue 7's footprint benchmark. Here it is a few arithmetic
//! operations on the OS's time zone, which jiff keeps cached for five
//! minutes and then reads again: a zone changed while the app runs shows
//! from the next view read after that.
//!
//! Terminology:
//! - **hour cycle**: 24-hour ("14:05") or 12-hour ("2:05 PM").
//! - [`ClockChoice`]: the agent's setting; `system` follows the OS locale
//!   ([`HourCycle::for_locale`]).
//! - [`WallClock`]: where the time zone comes from and the OS's hour
//!   cycle, made once by the shell ([`WallClock::from_environment`]) and
//!   handed to the view functions; tests make one with a fixed zone, or
//!   with a zone source of their own.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_protocol::Millis;

/// How the agent wants times shown.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockChoice {
    /// As the operating system's locale has it.
    #[default]
    System,
    /// "14:05".
    TwentyFourHour,
    /// "2:05 PM".
    TwelveHour,
}

/// 24-hour or 12-hour times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HourCycle {
    /// "14:05".
    TwentyFour,
    /// "2:05 PM".
    Twelve,
}

/// Regions whose usual clock is 12-hour (CLDR's preferred hour cycle
/// `h`), by ISO 3166 code. Everything else is 24-hour; the agent's
/// [`ClockChoice`] overrides either way.
const TWELVE_HOUR_REGIONS: &[&str] = &[
    "AE", "AU", "BD", "BH", "CA", "CO", "DO", "EG", "HK", "HN", "IN", "IQ", "JO", "KR", "KW", "LB",
    "LY", "MO", "MY", "NI", "NZ", "OM", "PA", "PH", "PK", "PR", "QA", "SA", "SD", "SG", "SV", "SY",
    "TW", "US", "YE",
];

/// Locales of those regions that still use a 24-hour clock.
const TWENTY_FOUR_HOUR_LOCALES: &[&str] = &["fr_CA"];

impl HourCycle {
    /// The usual hour cycle of a POSIX locale name (`en_US.UTF-8`,
    /// `de_DE@euro`, `C`): 12-hour for the regions that use it, 24-hour
    /// otherwise (including `C` and anything unparseable).
    pub fn for_locale(locale: &str) -> HourCycle {
        let name = locale.split(['.', '@']).next().unwrap_or("");
        let Some((language, region)) = name.split_once(['_', '-']) else {
            return HourCycle::TwentyFour;
        };
        let (language, region) = (language.to_ascii_lowercase(), region.to_ascii_uppercase());
        let exception = format!("{language}_{region}");
        if TWELVE_HOUR_REGIONS.contains(&region.as_str())
            && !TWENTY_FOUR_HOUR_LOCALES.contains(&exception.as_str())
        {
            HourCycle::Twelve
        } else {
            HourCycle::TwentyFour
        }
    }

    /// The locale that decides times, as POSIX resolves it: `LC_ALL`, then
    /// `LC_TIME`, then `LANG` (the first one set and not empty).
    pub fn locale_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
        ["LC_ALL", "LC_TIME", "LANG"]
            .into_iter()
            .find_map(|k| var(k).filter(|v| !v.is_empty()))
    }
}

/// Reads the time zone as it is now (`None`: unreadable, UTC is shown).
pub type ZoneSource = Arc<dyn Fn() -> Option<TimeZone> + Send + Sync>;

/// Where the agent's time zone comes from, and the OS's hour cycle.
#[derive(Clone)]
pub struct WallClock {
    zone: ZoneSource,
    system: HourCycle,
    /// The time of the view read this clock labels (its "today"), if one
    /// was taken ([`WallClock::current`], [`WallClock::at`]).
    now: Option<Millis>,
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WallClock")
            .field("zone", &self.zone())
            .field("system", &self.system)
            .finish()
    }
}

impl WallClock {
    /// A wall clock in `zone`, where [`ClockChoice::System`] means
    /// `system`.
    pub fn new(zone: TimeZone, system: HourCycle) -> WallClock {
        WallClock::with_zone_source(Arc::new(move || Some(zone.clone())), system)
    }

    /// A wall clock whose zone is read from `zone` for every label.
    pub fn with_zone_source(zone: ZoneSource, system: HourCycle) -> WallClock {
        WallClock {
            zone,
            system,
            now: None,
        }
    }

    /// This clock labelling as of `now` (what "today" is for
    /// [`WallClock::message_time`]).
    pub fn at(mut self, now: Millis) -> WallClock {
        self.now = Some(now);
        self
    }

    /// The OS's time zone (`TZ`, else `/etc/localtime`, or the platform's
    /// own on Windows and macOS), as it is at each label: jiff caches it
    /// for five minutes and then reads it again, so a zone changed while
    /// the app runs (a laptop taken abroad, a VM set up after login) is
    /// followed without a restart. The hour cycle is its locale's, read
    /// once. Falls back to UTC, with a warning, when the zone cannot be
    /// read.
    pub fn from_environment() -> WallClock {
        if let Err(e) = TimeZone::try_system() {
            tracing::warn!(error = %e, "the system time zone is unreadable; showing UTC times");
        }
        let locale = HourCycle::locale_from(|k| std::env::var(k).ok()).unwrap_or_default();
        WallClock::with_zone_source(
            Arc::new(|| TimeZone::try_system().ok()),
            HourCycle::for_locale(&locale),
        )
    }

    fn zone(&self) -> TimeZone {
        (self.zone)().unwrap_or(TimeZone::UTC)
    }

    /// This clock with its zone read now and fixed: for one view read, so
    /// that its labels share one zone (and an unreadable zone is probed
    /// once, not for every label).
    pub fn current(&self) -> WallClock {
        let now = Millis(jiff::Timestamp::now().as_millisecond());
        WallClock::new(self.zone(), self.system).at(now)
    }

    /// A message's time: "14:05" today, "2026-11-20 14:05" on another day
    /// (a thread across midnight, older messages loaded), so that an old
    /// message does not read as today's. The time alone when this clock
    /// has no "today".
    pub fn message_time(&self, at: Millis, choice: ClockChoice) -> String {
        let today = self.now.and_then(|n| self.civil(n)).map(|d| d.date());
        match (today, self.civil(at)) {
            (Some(today), Some(d)) if d.date() != today => self.date_time(at, choice),
            _ => self.time(at, choice),
        }
    }

    fn cycle(&self, choice: ClockChoice) -> HourCycle {
        match choice {
            ClockChoice::System => self.system,
            ClockChoice::TwentyFourHour => HourCycle::TwentyFour,
            ClockChoice::TwelveHour => HourCycle::Twelve,
        }
    }

    fn civil(&self, at: Millis) -> Option<jiff::civil::DateTime> {
        Timestamp::from_millisecond(at.0)
            .ok()
            .map(|t| self.zone().to_datetime(t))
    }

    /// "14:05" or "2:05 PM"; "--:--" for a time out of range.
    pub fn time(&self, at: Millis, choice: ClockChoice) -> String {
        match self.civil(at) {
            Some(d) => hours_minutes(d.hour(), d.minute(), self.cycle(choice)),
            None => "--:--".to_owned(),
        }
    }

    /// "2026-11-20 14:05" (the date is ISO 8601: the same in every
    /// locale); "--" for a time out of range.
    pub fn date_time(&self, at: Millis, choice: ClockChoice) -> String {
        match self.civil(at) {
            Some(d) => format!(
                "{:04}-{:02}-{:02} {}",
                d.year(),
                d.month(),
                d.day(),
                hours_minutes(d.hour(), d.minute(), self.cycle(choice))
            ),
            None => "--".to_owned(),
        }
    }
}

fn hours_minutes(hour: i8, minute: i8, cycle: HourCycle) -> String {
    match cycle {
        HourCycle::TwentyFour => format!("{hour:02}:{minute:02}"),
        HourCycle::Twelve => {
            let h12 = match hour % 12 {
                0 => 12,
                h => h,
            };
            let half = if hour < 12 { "AM" } else { "PM" };
            format!("{h12}:{minute:02}\u{a0}{half}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-01-15 13:05:00 UTC and 2026-07-15 13:05:00 UTC.
    const WINTER: Millis = Millis(1_768_482_300_000);
    const SUMMER: Millis = Millis(1_784_120_700_000);

    fn berlin() -> WallClock {
        WallClock::new(
            TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
            HourCycle::TwentyFour,
        )
    }

    /// The zone is read for each label, not once: a zone changed while
    /// the app runs shows at the next read of the view.
    #[test]
    fn a_zone_changed_while_running_is_followed() {
        use std::sync::Mutex;
        let zone = Arc::new(Mutex::new(Some(TimeZone::UTC)));
        let source = zone.clone();
        let c = WallClock::with_zone_source(
            Arc::new(move || source.lock().unwrap().clone()),
            HourCycle::TwentyFour,
        );
        assert_eq!(c.time(WINTER, ClockChoice::System), "13:05");
        // One view read's copy keeps the zone it was made with.
        let read = c.current();
        *zone.lock().unwrap() = Some(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
        assert_eq!(c.time(WINTER, ClockChoice::System), "14:05");
        assert_eq!(read.time(WINTER, ClockChoice::System), "13:05");
        // Unreadable now: UTC, not the last zone or a failure.
        *zone.lock().unwrap() = None;
        assert_eq!(c.time(WINTER, ClockChoice::System), "13:05");
    }

    /// A message from another day carries its date; today's only the time.
    #[test]
    fn a_message_from_another_day_carries_its_date() {
        // WINTER is 14:05 in Berlin; an hour before its midnight, and the
        // next morning.
        let evening = Millis(WINTER.0 + 9 * 3_600_000 - 10 * 60_000);
        let c = berlin().at(evening);
        assert_eq!(c.message_time(WINTER, ClockChoice::System), "14:05");
        let next_morning = berlin().at(Millis(evening.0 + 9 * 3_600_000));
        assert_eq!(
            next_morning.message_time(WINTER, ClockChoice::System),
            "2026-01-15 14:05"
        );
        // No "today" known: the time alone, as before.
        assert_eq!(berlin().message_time(WINTER, ClockChoice::System), "14:05");
    }

    #[test]
    fn times_follow_the_zone_and_its_daylight_saving() {
        let c = berlin();
        assert_eq!(c.time(WINTER, ClockChoice::System), "14:05");
        assert_eq!(c.time(SUMMER, ClockChoice::System), "15:05");
        assert_eq!(c.date_time(SUMMER, ClockChoice::System), "2026-07-15 15:05");
    }

    #[test]
    fn the_agents_choice_overrides_the_locale() {
        let c = berlin();
        assert_eq!(c.time(WINTER, ClockChoice::TwelveHour), "2:05\u{a0}PM");
        let us = WallClock::new(TimeZone::UTC, HourCycle::Twelve);
        assert_eq!(us.time(WINTER, ClockChoice::System), "1:05\u{a0}PM");
        assert_eq!(us.time(WINTER, ClockChoice::TwentyFourHour), "13:05");
        // Midnight and noon.
        assert_eq!(us.time(Millis(0), ClockChoice::System), "12:00\u{a0}AM");
        assert_eq!(
            us.time(Millis(12 * 3_600_000), ClockChoice::System),
            "12:00\u{a0}PM"
        );
    }

    #[test]
    fn a_time_out_of_range_is_a_placeholder_not_a_panic() {
        let c = berlin();
        assert_eq!(c.time(Millis(i64::MAX), ClockChoice::System), "--:--");
        assert_eq!(c.date_time(Millis(i64::MIN), ClockChoice::System), "--");
    }

    #[test]
    fn the_hour_cycle_comes_from_the_locales_region() {
        for (locale, want) in [
            ("en_US.UTF-8", HourCycle::Twelve),
            ("en_AU", HourCycle::Twelve),
            ("ko_KR.UTF-8", HourCycle::Twelve),
            ("en_GB.UTF-8", HourCycle::TwentyFour),
            ("de_DE@euro", HourCycle::TwentyFour),
            ("en-CA", HourCycle::Twelve),
            ("fr_CA.UTF-8", HourCycle::TwentyFour),
            ("C.UTF-8", HourCycle::TwentyFour),
            ("POSIX", HourCycle::TwentyFour),
            ("", HourCycle::TwentyFour),
        ] {
            assert_eq!(HourCycle::for_locale(locale), want, "{locale}");
        }
    }

    #[test]
    fn lc_all_then_lc_time_then_lang_decide() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            HourCycle::locale_from(env(&[("LANG", "en_US.UTF-8"), ("LC_TIME", "de_DE.UTF-8")])),
            Some("de_DE.UTF-8".into())
        );
        assert_eq!(
            HourCycle::locale_from(env(&[("LC_ALL", ""), ("LANG", "en_US.UTF-8")])),
            Some("en_US.UTF-8".into())
        );
        assert_eq!(HourCycle::locale_from(env(&[])), None);
    }
}
