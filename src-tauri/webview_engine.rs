//! How the webview's JavaScript engine runs. On Linux (WebKitGTK) the app
//! turns two parts of JavaScriptCore off for its web process, through the
//! environment the web process inherits:
//!
//! - **The JIT** (`JSC_useJIT=0`). The UI is a small Svelte app that
//!   re-renders a few rows on an event; the interpreter runs it with time
//!   to spare, while the JIT's code and compiler memory made up most of
//!   what the signed-in UI adds to the web process (13 MiB of 43, measured
//!   with 10 sessions restored: issue 7's footprint benchmark). It also
//!   removes the JIT from the process that renders what customers write.
//!   `SWITCHBOARD_WEBVIEW_JIT=1`, or an explicit `JSC_useJIT`, keeps it.
//! - **The source-code cache** (`JSC_useCodeCache=0`). JavaScriptCore
//!   keeps the compiled code of each top-level script it evaluates, keyed
//!   by the script's text, so that a page evaluating the same script again
//!   skips compiling it. Tauri delivers every event, and WebDriver every
//!   command, as a script of its own text (the payload is in it), so no
//!   entry is ever used again; and the cache's bound only ratchets up: each
//!   time it prunes, it keeps at least as much as was added since the last
//!   prune (`CodeCacheMap::pruneSlowCase`). Without the cache, such a
//!   script's code goes with the next collection. The page's own bundle is
//!   evaluated once, so nothing is compiled twice.
//!   `SWITCHBOARD_WEBVIEW_CODE_CACHE=1`, or an explicit `JSC_useCodeCache`,
//!   keeps it.
//!
//! It also gives the web process a memory budget ([`CacheRelease`]): at
//! each of WebKit's memory checks (every 30 s) it drops its non-critical
//! caches above [`CacheRelease::release_above_mib`] of its own memory, and
//! its critical memory too (a full collection, the interpreter's compiled
//! code) above [`CacheRelease::critical_above_mib`]. Why: WebKit keeps
//! about half a KiB for every distinct text written into the page (a
//! reply typed, a message shown) and, left to its default budget (a third
//! of the machine's RAM, at most 1 GiB), never lets it go; and while an
//! agent works, the web process grew by a further 25–60 KiB a minute,
//! outside the JavaScript heap, that the cache release did not take back
//! but the critical release did (issue 7's soak, docs/soak.md).
//! Critical release kept only as a backstop (above 30 MiB), with the
//! source-code cache off, was tried and was no better (run X).
//! `SWITCHBOARD_WEBVIEW_CACHE_RELEASE=0` keeps WebKit's defaults (for
//! comparing); `=MIB,SECS` releases above `MIB` and checks every `SECS`
//! (for tests).

/// Set to `1` to keep the JIT on.
pub const JIT_OVERRIDE: &str = "SWITCHBOARD_WEBVIEW_JIT";

/// The variable JavaScriptCore reads for its JIT.
pub const JSC_USE_JIT: &str = "JSC_useJIT";

/// Set to `1` to keep JavaScriptCore's source-code cache on.
pub const CODE_CACHE_OVERRIDE: &str = "SWITCHBOARD_WEBVIEW_CODE_CACHE";

/// The variable JavaScriptCore reads for its source-code cache.
pub const JSC_USE_CODE_CACHE: &str = "JSC_useCodeCache";

/// What to set for the JIT, given what the environment already says.
pub fn jit_variable(
    jsc_use_jit: Option<&std::ffi::OsStr>,
    jit_override: Option<&std::ffi::OsStr>,
) -> Option<(&'static str, &'static str)> {
    turned_off(JSC_USE_JIT, jsc_use_jit, jit_override)
}

/// What to set for the source-code cache, given what the environment
/// already says.
pub fn code_cache_variable(
    jsc_use_code_cache: Option<&std::ffi::OsStr>,
    code_cache_override: Option<&std::ffi::OsStr>,
) -> Option<(&'static str, &'static str)> {
    turned_off(JSC_USE_CODE_CACHE, jsc_use_code_cache, code_cache_override)
}

/// `name=0`, unless JavaScriptCore's own variable is already set (it wins)
/// or the app's override asks to keep the part on.
fn turned_off(
    name: &'static str,
    jsc_value: Option<&std::ffi::OsStr>,
    keep_on: Option<&std::ffi::OsStr>,
) -> Option<(&'static str, &'static str)> {
    if jsc_value.is_some() || keep_on.is_some_and(|v| v == "1") {
        return None;
    }
    Some((name, "0"))
}

/// Set to `0` to leave WebKit's memory budget at its default.
pub const CACHE_RELEASE_OVERRIDE: &str = "SWITCHBOARD_WEBVIEW_CACHE_RELEASE";

/// The web process's memory budget, as WebKit's memory-pressure settings
/// take it: a limit and fractions of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheRelease {
    /// The budget, MiB.
    pub limit_mib: u32,
    /// Above this fraction, non-critical caches (text measurement, fonts,
    /// style sharing, decoded resources) are dropped at each check.
    pub conservative: f64,
    /// Above this fraction, critical memory too (a full garbage
    /// collection, compiled code, style and font caches).
    pub strict: f64,
    /// Seconds between checks. WebKit's default; the check already runs
    /// at this pace without a budget, so an idle app wakes no more often.
    pub poll_secs: f64,
}

impl CacheRelease {
    /// What the app asks for: caches released above 4 MiB (see
    /// [`Self::release_above_mib`]), critical memory above 12 MiB
    /// ([`Self::critical_above_mib`]), checked every 30 s.
    pub const APP: CacheRelease = CacheRelease {
        limit_mib: 16,
        conservative: 0.25,
        strict: 0.75,
        poll_secs: 30.0,
    };

    /// Where non-critical release starts, MiB.
    ///
    /// WebKit measures its "footprint" as the private dirty memory of
    /// anonymous mappings and the heap: not smaps' `Anonymous`, which also
    /// counts relocated library pages (19 MiB of the web process here).
    /// Measured that way, a blank page holds 5.4 MiB and the signed-in app
    /// at work (issue 7's soak: 10 sessions, replies) 17–21 MiB. Releasing
    /// above 4 MiB means every check finds caches to drop, so what WebKit
    /// keeps per distinct text never outlives 30 s. (A first cut at
    /// 32 MiB never triggered: the soak kept growing.)
    pub fn release_above_mib(&self) -> f64 {
        f64::from(self.limit_mib) * self.conservative
    }

    /// Where critical release starts, MiB: 12, below the app at work, so
    /// every check while the agent works collects and drops compiled code.
    /// Measured: the soak's web process stays flat with it (it grew
    /// 25–60 KiB a minute without), its CPU time is the same within 1 %,
    /// and so is the idle app's (0.1 % over 95 s: at idle the page sits
    /// near the line, and code dropped is recompiled only when it next
    /// runs). Kept as a backstop only (above 30 MiB), the web process
    /// ended an hour's soak higher and rising (docs/soak.md,
    /// run X).
    pub fn critical_above_mib(&self) -> f64 {
        f64::from(self.limit_mib) * self.strict
    }

    /// The budget to apply, given `SWITCHBOARD_WEBVIEW_CACHE_RELEASE`:
    /// unset (or unreadable), the app's; `0`, none (WebKit's default);
    /// `MIB,SECS`, release above `MIB` MiB, checked every `SECS` seconds.
    pub fn wanted(cache_release_override: Option<&std::ffi::OsStr>) -> Option<CacheRelease> {
        let Some(value) = cache_release_override.and_then(|v| v.to_str()) else {
            return Some(Self::APP);
        };
        if value == "0" {
            return None;
        }
        let parsed = value.split_once(',').and_then(|(mib, secs)| {
            Some((
                mib.trim().parse::<u32>().ok()?,
                secs.trim().parse::<f64>().ok()?,
            ))
        });
        match parsed {
            Some((mib, secs)) if mib > 0 && secs > 0.0 => Some(CacheRelease {
                // The same fractions as the app's, scaled to release above `mib`.
                limit_mib: (f64::from(mib) / Self::APP.conservative).round() as u32,
                poll_secs: secs,
                ..Self::APP
            }),
            _ => {
                tracing::warn!(
                    value,
                    "{CACHE_RELEASE_OVERRIDE}: expected 0 or MIB,SECS; using the app's budget"
                );
                Some(Self::APP)
            }
        }
    }
}

/// Configures the engine. Call first thing in `main`, before any thread
/// starts (it changes the process environment) and before any webview
/// exists (the budget applies to web contexts created afterwards).
pub fn configure() {
    #[cfg(target_os = "linux")]
    {
        let wanted = [
            jit_variable(
                std::env::var_os(JSC_USE_JIT).as_deref(),
                std::env::var_os(JIT_OVERRIDE).as_deref(),
            ),
            code_cache_variable(
                std::env::var_os(JSC_USE_CODE_CACHE).as_deref(),
                std::env::var_os(CODE_CACHE_OVERRIDE).as_deref(),
            ),
        ];
        for (name, value) in wanted.into_iter().flatten() {
            std::env::set_var(name, value);
        }
        if let Some(budget) =
            CacheRelease::wanted(std::env::var_os(CACHE_RELEASE_OVERRIDE).as_deref())
        {
            webkit_budget::install(budget);
        }
    }
}

/// Gives every WebKitGTK web context the app creates a memory budget.
///
/// Tauri (through wry) builds its `WebKitWebContext` itself and offers no
/// way to pass `memory-pressure-settings`, a construct-only property. So
/// this wraps the class's `constructed` step: before WebKit's own
/// `constructed` reads its construct properties into the process pool's
/// configuration, the budget is stored through the class's `set_property`,
/// exactly as `g_object_new(..., "memory-pressure-settings", s)` would.
/// The class is referenced for the life of the process, so its vtable
/// stays valid.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod webkit_budget {
    use std::sync::OnceLock;

    use gobject_sys::{GObject, GObjectClass, GValue};

    use super::CacheRelease;

    type Constructed = unsafe extern "C" fn(*mut GObject);

    /// WebKit's own `constructed` and the budget; set once, before any
    /// web context exists, then only read (a C callback has no user data).
    static WRAPPED: OnceLock<(Option<Constructed>, CacheRelease)> = OnceLock::new();

    const PROPERTY: &std::ffi::CStr = c"memory-pressure-settings";

    pub fn install(budget: CacheRelease) {
        if WRAPPED.get().is_some() {
            return;
        }
        // SAFETY: the GType system initialises itself on first use; the
        // class reference taken here is never released, so `class` stays
        // valid, and the vtable is changed before any instance exists
        // (Tauri has not built a webview yet).
        unsafe {
            let class = gobject_sys::g_type_class_ref(webkit2gtk_sys::webkit_web_context_get_type())
                as *mut GObjectClass;
            if class.is_null()
                || gobject_sys::g_object_class_find_property(class, PROPERTY.as_ptr()).is_null()
            {
                tracing::warn!("this WebKitGTK has no memory-pressure settings; default budget");
                return;
            }
            if WRAPPED.set(((*class).constructed, budget)).is_ok() {
                (*class).constructed = Some(constructed);
                tracing::debug!(?budget, "web process memory budget set");
            }
        }
    }

    unsafe extern "C" fn constructed(object: *mut GObject) {
        let Some((original, budget)) = WRAPPED.get() else {
            return;
        };
        // SAFETY: `object` is a WebKitWebContext being constructed (this
        // function is only in that class's vtable); the property and its
        // owner class exist (checked in `install`); the GValue holds a
        // boxed copy WebKit takes its own copy of, freed by `g_value_unset`.
        unsafe {
            let class = (*object).g_type_instance.g_class as *mut GObjectClass;
            let pspec = gobject_sys::g_object_class_find_property(class, PROPERTY.as_ptr());
            if !pspec.is_null() {
                let owner =
                    gobject_sys::g_type_class_peek((*pspec).owner_type) as *mut GObjectClass;
                if let Some(set_property) = owner.as_ref().and_then(|c| c.set_property) {
                    let settings = webkit2gtk_sys::webkit_memory_pressure_settings_new();
                    webkit2gtk_sys::webkit_memory_pressure_settings_set_memory_limit(
                        settings,
                        budget.limit_mib,
                    );
                    webkit2gtk_sys::webkit_memory_pressure_settings_set_strict_threshold(
                        settings,
                        budget.strict,
                    );
                    webkit2gtk_sys::webkit_memory_pressure_settings_set_conservative_threshold(
                        settings,
                        budget.conservative,
                    );
                    webkit2gtk_sys::webkit_memory_pressure_settings_set_poll_interval(
                        settings,
                        budget.poll_secs,
                    );
                    let mut value: GValue = std::mem::zeroed();
                    gobject_sys::g_value_init(
                        &mut value,
                        webkit2gtk_sys::webkit_memory_pressure_settings_get_type(),
                    );
                    gobject_sys::g_value_take_boxed(&mut value, settings.cast());
                    set_property(object, (*pspec).param_id, &mut value, pspec);
                    gobject_sys::g_value_unset(&mut value);
                }
            }
            if let Some(original) = original {
                original(object);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn the_web_process_gets_a_budget_unless_asked_not_to() {
        let budget = CacheRelease::wanted(None).expect("a budget by default");
        assert_eq!(budget, CacheRelease::APP);
        assert_eq!(budget.release_above_mib(), 4.0);
        assert_eq!(budget.critical_above_mib(), 12.0);
        // WebKit rejects settings out of this order.
        assert!(
            0.0 < budget.conservative && budget.conservative < budget.strict && budget.strict < 1.0
        );
        assert_eq!(CacheRelease::wanted(Some(OsStr::new("0"))), None);
        let test_budget = CacheRelease::wanted(Some(OsStr::new("8, 1.5"))).unwrap();
        assert_eq!((test_budget.limit_mib, test_budget.poll_secs), (32, 1.5));
        assert_eq!(
            test_budget.release_above_mib(),
            8.0,
            "MIB is where release starts"
        );
        for bad in ["1", "x,1", "8,0", "0,1", "8,-1", ""] {
            assert_eq!(
                CacheRelease::wanted(Some(OsStr::new(bad))),
                Some(CacheRelease::APP),
                "{bad:?} falls back to the app's budget"
            );
        }
    }

    #[test]
    fn the_jit_and_the_code_cache_are_off_unless_asked_for() {
        type Rule = fn(Option<&OsStr>, Option<&OsStr>) -> Option<(&'static str, &'static str)>;
        let rules: [(Rule, &str); 2] = [
            (jit_variable, "JSC_useJIT"),
            (code_cache_variable, "JSC_useCodeCache"),
        ];
        for (rule, name) in rules {
            assert_eq!(rule(None, None), Some((name, "0")), "{name}");
            assert_eq!(rule(None, Some(OsStr::new("1"))), None, "{name}");
            assert_eq!(
                rule(Some(OsStr::new("1")), None),
                None,
                "{name}: an explicit JSC setting wins"
            );
            for other in ["0", "yes"] {
                assert_eq!(
                    rule(None, Some(OsStr::new(other))),
                    Some((name, "0")),
                    "{name}: only 1 keeps it on"
                );
            }
        }
    }
}
