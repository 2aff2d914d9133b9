//! The global shortcut that accepts the offer the window shows from anywhere on the
//! desktop (Ctrl+Shift+A; Cmd+Shift+A on macOS).
//!
//! The key is taken from the desktop only while an offer is pending
//! ([`offers_pending`], from the tray menu the engine publishes): held all
//! day, it was stolen from every other program (a browser's Ctrl+Shift+A),
//! and pressing it there with no offer raised the window for nothing.
//!
//! Linux (X11): a passive key grab on the root window, served by a thread
//! that blocks in `wait_for_event`. tauri-plugin-global-shortcut's X11
//! backend (global-hotkey) polls the X connection every 50 ms instead —
//! 20 wakeups a second for an idle app, which the idle benchmark counted —
//! so Linux uses this small adapter. Wayland sessions without XWayland
//! refuse global grabs: one warning, and the window's Alt+A and the tray
//! still accept. Windows and macOS use tauri-plugin-global-shortcut (no
//! polling there).

use tauri::{AppHandle, Manager};

use crate::shell::Shell;

/// The shortcut, in Tauri's accelerator syntax.
pub const ACCEPT_SHORTCUT: &str = "CommandOrControl+Shift+A";

/// The shortcut was pressed: bring the window forward and accept.
fn pressed(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        crate::sink::show_main_window(&app);
        let shell = app.state::<Shell>();
        if let Err(e) = shell
            .act(switchboard_client::AgentAction::AcceptSoonest)
            .await
        {
            tracing::debug!(error = %e, "shortcut: nothing to accept");
        }
    });
}

/// Whether the key is taken from the desktop now, and how to take and
/// release it (managed state; set up by [`start`]).
#[derive(Default)]
pub struct AcceptShortcut {
    inner: std::sync::Mutex<ShortcutState>,
}

#[derive(Default)]
struct ShortcutState {
    /// An offer is pending: the key should be held.
    wanted: bool,
    /// The key is held.
    held: bool,
    /// The platform's grab, once ready (none: unavailable, or not yet).
    #[cfg(target_os = "linux")]
    grab: Option<x11::Grab>,
}

/// Whether an offer is pending: the key is taken while one is, and given
/// back to the desktop when none is.
pub fn offers_pending(app: &AppHandle, pending: bool) {
    let Some(shortcut) = app.try_state::<AcceptShortcut>() else {
        return;
    };
    let mut st = shortcut.inner.lock().unwrap_or_else(|e| e.into_inner());
    st.wanted = pending;
    apply(app, &mut st);
}

/// Takes or releases the key as [`ShortcutState::wanted`] says.
fn apply(app: &AppHandle, st: &mut ShortcutState) {
    if st.wanted == st.held {
        return;
    }
    #[cfg(target_os = "linux")]
    let done = {
        let _ = app;
        match &st.grab {
            Some(grab) => grab.set(st.wanted),
            None => return,
        }
    };
    #[cfg(not(target_os = "linux"))]
    let done = {
        use tauri_plugin_global_shortcut::GlobalShortcutExt;
        let shortcuts = app.global_shortcut();
        if st.wanted {
            shortcuts.register(ACCEPT_SHORTCUT)
        } else {
            shortcuts.unregister(ACCEPT_SHORTCUT)
        }
        .map_err(|e| e.to_string())
    };
    match done {
        Ok(()) => st.held = st.wanted,
        Err(e) => {
            tracing::warn!(error = %e, shortcut = ACCEPT_SHORTCUT, "global shortcut unavailable");
        }
    }
}

#[cfg(target_os = "linux")]
pub use x11::start;

/// Nothing to install on Linux (see [`start`]).
#[cfg(target_os = "linux")]
pub fn plugin() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri::plugin::Builder::new("switchboard-shortcut").build()
}

#[cfg(target_os = "linux")]
mod x11 {
    use super::*;
    use std::sync::Arc;
    use x11rb::connection::{Connection, RequestConnection};
    use x11rb::protocol::xkb::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{ConnectionExt as _, GrabMode, KeyButMask, ModMask};
    use x11rb::protocol::Event;
    use x11rb::rust_connection::RustConnection;

    /// Keysyms of the A key (lower and upper case).
    const KEYSYMS_A: [u32; 2] = [0x61, 0x41];

    /// Starts the key's listener on its own thread (never blocks the
    /// caller); the key is taken only while an offer is pending.
    pub fn start(app: &AppHandle) {
        app.manage(AcceptShortcut::default());
        let app = app.clone();
        let spawned = std::thread::Builder::new()
            .name("accept-shortcut".into())
            .spawn(move || {
                if let Err(e) = run(&app) {
                    tracing::warn!(error = %e, shortcut = ACCEPT_SHORTCUT, "global shortcut unavailable");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "global shortcut thread could not start");
        }
    }

    /// The passive grab of the key on the root window: taken and released
    /// from any thread while the listener waits for events on the same
    /// connection (x11rb's connection is thread-safe).
    pub(super) struct Grab {
        conn: Arc<RustConnection>,
        root: u32,
        keycode: u8,
    }

    impl Grab {
        /// Ctrl+Shift with any of the locks: NumLock and CapsLock must not
        /// stop the shortcut.
        fn modifiers() -> [ModMask; 4] {
            let mods = ModMask::CONTROL | ModMask::SHIFT;
            [
                mods,
                mods | ModMask::M2,
                mods | ModMask::LOCK,
                mods | ModMask::M2 | ModMask::LOCK,
            ]
        }

        /// Takes (`true`) or releases the key. A take that fails part way
        /// (another program holds one of the variants) releases what it
        /// took: the key is then held by none of ours, as the state says.
        pub(super) fn set(&self, take: bool) -> Result<(), String> {
            let result = self.set_each(take);
            if take && result.is_err() {
                let _ = self.set_each(false);
            }
            result
        }

        fn set_each(&self, take: bool) -> Result<(), String> {
            for mods in Self::modifiers() {
                if take {
                    self.conn
                        .grab_key(
                            false,
                            self.root,
                            mods,
                            self.keycode,
                            GrabMode::ASYNC,
                            GrabMode::ASYNC,
                        )
                        .map_err(|e| e.to_string())?
                        .check()
                        .map_err(|e| format!("another program holds the key: {e}"))?;
                } else {
                    self.conn
                        .ungrab_key(self.keycode, self.root, mods)
                        .map_err(|e| e.to_string())?
                        .check()
                        .map_err(|e| e.to_string())?;
                }
            }
            tracing::debug!(shortcut = ACCEPT_SHORTCUT, take, "global shortcut");
            Ok(())
        }
    }

    fn run(app: &AppHandle) -> Result<(), String> {
        let (conn, screen) = RustConnection::connect(None).map_err(|e| e.to_string())?;
        let conn = Arc::new(conn);
        let root = conn.setup().roots[screen].root;
        // Held keys then repeat as presses only, not release+press pairs
        // (one accept per press, however long it is held).
        if conn
            .extension_information(xkb::X11_EXTENSION_NAME)
            .ok()
            .flatten()
            .is_some()
        {
            let _ = conn
                .xkb_use_extension(1, 0)
                .map(|c| c.reply())
                .map_err(|e| e.to_string())?;
            let all = xkb::PerClientFlag::DETECTABLE_AUTO_REPEAT;
            let _ = conn
                .xkb_per_client_flags(
                    xkb::ID::USE_CORE_KBD.into(),
                    all,
                    all,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                )
                .map(|c| c.reply())
                .map_err(|e| e.to_string())?;
        }
        let keycode = keycode_of(&conn, &KEYSYMS_A)?.ok_or("no key produces A")?;
        {
            let shortcut = app.state::<AcceptShortcut>();
            let mut st = shortcut.inner.lock().unwrap_or_else(|e| e.into_inner());
            st.grab = Some(Grab {
                conn: conn.clone(),
                root,
                keycode,
            });
            // An offer may have come meanwhile.
            apply(app, &mut st);
        }
        tracing::info!(
            shortcut = ACCEPT_SHORTCUT,
            "global shortcut ready (taken while an offer is pending)"
        );
        let wanted = u16::from(KeyButMask::CONTROL | KeyButMask::SHIFT);
        let relevant = wanted | u16::from(KeyButMask::MOD1 | KeyButMask::MOD4);
        let mut down = false;
        loop {
            match conn.wait_for_event().map_err(|e| e.to_string())? {
                Event::KeyPress(ev)
                    if ev.detail == keycode
                        && u16::from(ev.state) & relevant == wanted
                        && !down =>
                {
                    down = true;
                    pressed(app);
                }
                Event::KeyRelease(ev) if ev.detail == keycode => down = false,
                _ => {}
            }
        }
    }

    fn keycode_of(conn: &RustConnection, keysyms: &[u32]) -> Result<Option<u8>, String> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let mapping = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        Ok(keycode_for(
            min,
            usize::from(mapping.keysyms_per_keycode),
            &mapping.keysyms,
            keysyms,
        ))
    }

    /// The keycode that types one of `wanted` in the first layout (a
    /// keycode's first two keysyms: plain and shifted), else in any. With
    /// two layouts ("us,fr"), Q's key lists "a" in its second group and
    /// comes before A's: taking the first match grabbed Ctrl+Shift+Q.
    pub(super) fn keycode_for(min: u8, per: usize, syms: &[u32], wanted: &[u32]) -> Option<u8> {
        let per = per.max(1);
        let types = |k: &[u32], n: usize| k.iter().take(n).any(|s| wanted.contains(s));
        let i = syms
            .chunks(per)
            .position(|k| types(k, 2))
            .or_else(|| syms.chunks(per).position(|k| types(k, per)))?;
        u8::try_from(i).ok().and_then(|i| min.checked_add(i))
    }

    #[cfg(test)]
    mod tests {
        use super::keycode_for;

        const Q: u32 = 0x71;
        const SHIFT_Q: u32 = 0x51;
        const A: u32 = 0x61;
        const SHIFT_A: u32 = 0x41;

        #[test]
        fn the_key_typing_a_in_the_first_layout_is_chosen_over_one_typing_it_in_the_second() {
            // Keycodes 8..: 8 types q (us) and a (fr), 9 types a (us) and q (fr).
            let syms = [Q, SHIFT_Q, A, SHIFT_A, A, SHIFT_A, Q, SHIFT_Q];
            assert_eq!(keycode_for(8, 4, &syms, &[A, SHIFT_A]), Some(9));
            // Typed only in a second layout: that key still.
            let only_second = [Q, SHIFT_Q, A, SHIFT_A];
            assert_eq!(keycode_for(8, 4, &only_second, &[A, SHIFT_A]), Some(8));
            assert_eq!(keycode_for(8, 4, &[Q, SHIFT_Q, 0, 0], &[A]), None);
        }
    }
}

/// Sets up the shortcut's state; tauri-plugin-global-shortcut registers
/// the key while an offer is pending ([`offers_pending`]).
#[cfg(not(target_os = "linux"))]
pub fn start(app: &AppHandle) {
    app.manage(AcceptShortcut::default());
}

/// The plugin, whose handler accepts on press.
#[cfg(not(target_os = "linux"))]
pub fn plugin() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state == tauri_plugin_global_shortcut::ShortcutState::Pressed {
                pressed(app);
            }
        })
        .build()
}
