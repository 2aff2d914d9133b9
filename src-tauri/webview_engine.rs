//! How the webview's JavaScript engine runs. On Linux (WebKitGTK) the app
//! turns JavaScriptCore's JIT off for its web process, through the
//! environment the web process inherits (`JSC_useJIT=0`).
//!
//! Why: the UI is a small Svelte app that re-renders a few rows on an
//! event; the interpreter runs it with time to spare, while the JIT's code
//! and compiler memory made up most of what the signed-in UI adds to the
//! web process (13 MiB of 43, measured with 10 sessions restored: issue 7's
//! footprint benchmark). It also removes the JIT from the process that
//! renders what customers write. `SWITCHBOARD_WEBVIEW_JIT=1`, or an
//! explicit `JSC_useJIT`, keeps the JIT on.

/// Set to keep the JIT on.
pub const JIT_OVERRIDE: &str = "SWITCHBOARD_WEBVIEW_JIT";

/// The variable JavaScriptCore reads.
pub const JSC_USE_JIT: &str = "JSC_useJIT";

/// What to set, given what the environment already says.
pub fn jit_variable(
    jsc_use_jit: Option<&std::ffi::OsStr>,
    jit_override: Option<&std::ffi::OsStr>,
) -> Option<(&'static str, &'static str)> {
    if jsc_use_jit.is_some() || jit_override.is_some_and(|v| v == "1") {
        return None;
    }
    Some((JSC_USE_JIT, "0"))
}

/// Configures the engine. Call first thing in `main`, before any thread
/// starts (it changes the process environment).
pub fn configure() {
    #[cfg(target_os = "linux")]
    if let Some((name, value)) = jit_variable(
        std::env::var_os(JSC_USE_JIT).as_deref(),
        std::env::var_os(JIT_OVERRIDE).as_deref(),
    ) {
        std::env::set_var(name, value);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn the_jit_is_off_unless_asked_for() {
        assert_eq!(jit_variable(None, None), Some(("JSC_useJIT", "0")));
        assert_eq!(
            jit_variable(None, Some(OsStr::new("0"))),
            Some(("JSC_useJIT", "0"))
        );
        assert_eq!(jit_variable(None, Some(OsStr::new("1"))), None);
        assert_eq!(
            jit_variable(Some(OsStr::new("1")), None),
            None,
            "an explicit JSC setting wins"
        );
    }
}
