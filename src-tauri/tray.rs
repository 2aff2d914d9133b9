//! The system tray (adapter): an icon with light/dark and unread-badge
//! variants, and a live menu — presence choices, one "Accept <channel> from
//! <customer>" item (and its Reject) per pending offer, the number of unread chats,
//! Open and Quit.
//!
//! The engine decides what the menu says ([`TrayMenu`]); this renders it
//! and maps clicks back to agent actions. On Linux only menu events arrive
//! (no left click, no tooltip), so quick-accept lives in the menu. With no
//! tray host the app keeps working: alerts stay in the window and OS
//! notifications. Closing the window hides it to the tray only when a
//! tray host shows the icon ([`CloseAction`]); with none (stock GNOME)
//! it minimises instead, so the window stays in the taskbar and dock.

use std::sync::Mutex;

use switchboard_client::engine::{NotificationAction, NotificationKey, TrayMenu};
use switchboard_client::settings::ThemeChoice;
use switchboard_client::AgentAction;
use switchboard_protocol::{OfferId, Presence};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::shell::Shell;
use crate::sink::show_main_window;

/// The tray icon's id.
pub const TRAY_ID: &str = "main";

/// Longest customer-derived label shown in the menu (characters).
const MAX_LABEL: usize = 64;

/// What a menu item does; its id is the wire form of this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayCommand {
    /// Bring the window forward.
    Open,
    /// Quit the app.
    Quit,
    /// Accept an offer.
    Accept(OfferId),
    /// Reject an offer (no reason needed).
    Reject(OfferId),
    /// The offer needs a reject reason: open the window at its alert.
    RejectInWindow(OfferId),
    /// Set presence.
    Presence(Presence),
}

impl TrayCommand {
    /// The menu item id.
    pub fn id(self) -> String {
        match self {
            TrayCommand::Open => "open".into(),
            TrayCommand::Quit => "quit".into(),
            TrayCommand::Accept(o) => format!("accept:{o}"),
            TrayCommand::Reject(o) => format!("reject:{o}"),
            TrayCommand::RejectInWindow(o) => format!("reject-in-window:{o}"),
            TrayCommand::Presence(p) => format!("presence:{}", p.as_str()),
        }
    }

    /// Parses a menu item id (ids this module did not make give `None`).
    pub fn parse(id: &str) -> Option<TrayCommand> {
        let offer = |s: &str| s.parse::<i64>().ok().map(OfferId);
        Some(match id.split_once(':') {
            None if id == "open" => TrayCommand::Open,
            None if id == "quit" => TrayCommand::Quit,
            Some(("accept", o)) => TrayCommand::Accept(offer(o)?),
            Some(("reject", o)) => TrayCommand::Reject(offer(o)?),
            Some(("reject-in-window", o)) => TrayCommand::RejectInWindow(offer(o)?),
            Some(("presence", p)) => TrayCommand::Presence(Presence::parse(p)?),
            _ => return None,
        })
    }
}

/// Makes customer text safe for a menu label: `&` is muda's mnemonic
/// marker (so it is doubled), controls and bidi overrides are dropped (a
/// right-to-left override would reverse the rest of the line), and the
/// length is capped.
pub fn menu_label(text: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        if n == MAX_LABEL {
            out.push('…');
            break;
        }
        if c == '&' {
            out.push('&');
        }
        out.push(c);
        n += 1;
    }
    out
}

/// A presence's menu label.
fn presence_label(p: Presence) -> &'static str {
    match p {
        Presence::Available => "Available",
        Presence::Busy => "Busy",
        Presence::DoNotDisturb => "Do not disturb",
        Presence::Away => "Away",
        Presence::Offline => "Appear offline",
        Presence::Inactive => "Inactive",
        Presence::Other => "Other (set by the hub)",
    }
}

/// One line of the menu, independent of the toolkit (what [`menu_lines`]
/// decides; [`render`] turns it into muda items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuLine {
    /// A clickable item.
    Item {
        /// What it does.
        command: TrayCommand,
        /// Label (already escaped for muda).
        label: String,
    },
    /// Information, not clickable.
    Info(String),
    /// A presence choice, checked when current.
    Presence {
        /// Which.
        presence: Presence,
        /// Current.
        checked: bool,
    },
    /// A divider.
    Separator,
}

/// The menu for a state (`None`: not signed in).
pub fn menu_lines(menu: Option<&TrayMenu>) -> Vec<MenuLine> {
    let mut lines = Vec::new();
    if let Some(m) = menu {
        for o in &m.offers {
            lines.push(MenuLine::Item {
                command: TrayCommand::Accept(o.offer_id),
                label: menu_label(&o.label),
            });
            if o.can_reject {
                lines.push(if o.reject_needs_reason {
                    MenuLine::Item {
                        command: TrayCommand::RejectInWindow(o.offer_id),
                        label: "    Reject (give a reason)…".into(),
                    }
                } else {
                    MenuLine::Item {
                        command: TrayCommand::Reject(o.offer_id),
                        label: "    Reject".into(),
                    }
                });
            }
        }
        if !m.offers.is_empty() {
            lines.push(MenuLine::Separator);
        }
        lines.push(MenuLine::Info(unread_label(m.unread_chats)));
        // Inactive is set by the system, never chosen; it is shown only
        // while current so the agent sees why no work arrives. So is a
        // presence only a newer hub knows.
        for p in Presence::ALL.into_iter().chain([Presence::Other]) {
            let checked = m.presence == Some(p);
            if !matches!(p, Presence::Inactive | Presence::Other) || checked {
                lines.push(MenuLine::Presence {
                    presence: p,
                    checked,
                });
            }
        }
        lines.push(MenuLine::Separator);
    }
    lines.push(MenuLine::Item {
        command: TrayCommand::Open,
        label: "Open Switchboard".into(),
    });
    lines.push(MenuLine::Item {
        command: TrayCommand::Quit,
        label: "Quit".into(),
    });
    lines
}

/// Icon size in pixels (panels scale it).
pub const ICON_SIZE: u32 = 32;

/// The menu's line for the chats with unread messages ("No unread
/// chats", "1 unread chat", "N unread chats").
pub fn unread_label(chats: u32) -> String {
    match chats {
        0 => "No unread chats".into(),
        1 => "1 unread chat".into(),
        n => format!("{n} unread chats"),
    }
}

/// Draws the tray icon: a switchboard glyph (a rounded panel with three
/// jacks) in a colour that reads on a light or a dark panel, with a red
/// badge in the top-right corner when a chat has unread messages. RGBA.
pub fn icon_pixels(dark: bool, badge: bool) -> Vec<u8> {
    let s = ICON_SIZE as i32;
    let ink: [u8; 4] = if dark {
        [0xF1, 0xF5, 0xF9, 0xFF]
    } else {
        [0x1E, 0x29, 0x3B, 0xFF]
    };
    let red: [u8; 4] = [0xDC, 0x26, 0x26, 0xFF];
    let mut px = vec![0u8; (s * s * 4) as usize];
    let mut put = |x: i32, y: i32, c: [u8; 4]| {
        if (0..s).contains(&x) && (0..s).contains(&y) {
            let i = ((y * s + x) * 4) as usize;
            px[i..i + 4].copy_from_slice(&c);
        }
    };
    let inside_rounded = |x: i32, y: i32, x0: i32, y0: i32, x1: i32, y1: i32, r: i32| {
        let cx = x.clamp(x0 + r, x1 - r);
        let cy = y.clamp(y0 + r, y1 - r);
        (x - cx).pow(2) + (y - cy).pow(2) <= r * r
    };
    for y in 0..s {
        for x in 0..s {
            let outer = inside_rounded(x, y, 3, 6, 28, 27, 5);
            let inner = inside_rounded(x, y, 6, 9, 25, 24, 3);
            if outer && !inner {
                put(x, y, ink);
            }
            // Three jacks on a row.
            for jx in [10, 16, 22] {
                if (x - jx).pow(2) + (y - 16).pow(2) <= 5 {
                    put(x, y, ink);
                }
            }
            if badge && (x - 26).pow(2) + (y - 6).pow(2) <= 30 {
                put(x, y, red);
            }
        }
    }
    px
}

/// What the tray shows now, managed state.
#[derive(Default)]
pub struct TrayView {
    state: Mutex<TrayState>,
}

#[derive(Default)]
struct TrayState {
    menu: Option<TrayMenu>,
    choice: ThemeChoice,
    system_dark: Option<bool>,
    /// The icon drawn last (dark, badge), to skip redundant redraws.
    icon: Option<(bool, bool)>,
    /// The window theme set last (`Some(dark)`), to skip redundant sets.
    window_dark: Option<bool>,
}

impl TrayState {
    fn dark(&self) -> bool {
        match self.choice {
            ThemeChoice::Dark => true,
            ThemeChoice::Light => false,
            ThemeChoice::System => self.system_dark.unwrap_or(false),
        }
    }

    /// The theme the window toolkit is told: the agent's choice, else the
    /// portal's preference; `None` (system, no portal reading): no dark
    /// preference, GTK's default.
    fn window_dark(&self) -> Option<bool> {
        match self.choice {
            ThemeChoice::Dark => Some(true),
            ThemeChoice::Light => Some(false),
            ThemeChoice::System => self.system_dark,
        }
    }
}

/// What the window's close button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Hide to the tray: the icon's Open brings it back.
    HideToTray,
    /// Minimise: with no tray host showing the icon, a hidden window
    /// could only come back from a notification or a second launch.
    Minimize,
}

impl CloseAction {
    /// The action for whether a tray host shows the app's icon.
    pub fn for_tray_host(host_present: bool) -> CloseAction {
        if host_present {
            CloseAction::HideToTray
        } else {
            CloseAction::Minimize
        }
    }
}

/// How long the close button waits for the session bus to say whether a
/// tray host is there (it then minimises, which loses nothing).
#[cfg(target_os = "linux")]
const HOST_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether a tray host shows StatusNotifierItems now: asked at each close,
/// since a panel can come and go during the day.
#[cfg(target_os = "linux")]
pub async fn tray_host_present() -> bool {
    async fn ask() -> zbus::Result<bool> {
        let bus = zbus::Connection::session().await?;
        let watcher = zbus::Proxy::new(
            &bus,
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.kde.StatusNotifierWatcher",
        )
        .await?;
        watcher
            .get_property::<bool>("IsStatusNotifierHostRegistered")
            .await
    }
    match tokio::time::timeout(HOST_PROBE_TIMEOUT, ask()).await {
        Ok(Ok(present)) => present,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "no tray host on the session bus");
            false
        }
        Err(_) => {
            tracing::warn!("the tray host did not answer in time");
            false
        }
    }
}

/// Windows' notification area and macOS's menu bar are always there.
#[cfg(not(target_os = "linux"))]
pub async fn tray_host_present() -> bool {
    true
}

/// The close button was pressed on `window` (the close itself is already
/// prevented): hide to the tray or minimise the main window. The alert
/// window is always hidden: it has no taskbar entry, and the next alert
/// shows it again.
pub fn close_requested(window: tauri::Window) {
    tauri::async_runtime::spawn(async move {
        let action = if window.label() == crate::sink::MAIN_LABEL {
            CloseAction::for_tray_host(tray_host_present().await)
        } else {
            CloseAction::HideToTray
        };
        let result = match action {
            CloseAction::HideToTray => window.hide(),
            CloseAction::Minimize => window.minimize(),
        };
        match result {
            Ok(()) => crate::sink::main_window_sight_changed(window.app_handle()),
            Err(e) => tracing::warn!(error = %e, ?action, "closing the window failed"),
        }
    });
}

/// Creates the tray; `false` when the desktop has no tray.
pub fn create(app: &AppHandle) -> bool {
    let result = (|| -> tauri::Result<()> {
        let menu = build_menu(app, &menu_lines(None))?;
        TrayIconBuilder::with_id(TRAY_ID)
            .menu(&menu)
            .icon(Image::new_owned(
                icon_pixels(false, false),
                ICON_SIZE,
                ICON_SIZE,
            ))
            .tooltip("Switchboard")
            .on_menu_event(|app, event| clicked(app, event.id().as_ref()))
            .build(app)?;
        Ok(())
    })();
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "no system tray; closing the window will quit");
            false
        }
    }
}

/// The engine's new menu (or `None` after sign-out).
pub fn show_menu(app: &AppHandle, menu: Option<TrayMenu>) {
    // The menu lists the pending offers: the accept shortcut follows them.
    crate::shortcut::offers_pending(app, menu.as_ref().is_some_and(|m| !m.offers.is_empty()));
    let Some(view) = app.try_state::<TrayView>() else {
        return;
    };
    let mut st = view.state.lock().unwrap_or_else(|e| e.into_inner());
    st.menu = menu;
    redraw(app, &mut st, true);
}

/// The theme inputs changed (agent's choice or the OS preference).
pub fn set_theme(app: &AppHandle, choice: Option<ThemeChoice>, system_dark: Option<Option<bool>>) {
    let Some(view) = app.try_state::<TrayView>() else {
        return;
    };
    let mut st = view.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = choice {
        st.choice = c;
    }
    if let Some(d) = system_dark {
        st.system_dark = d;
    }
    redraw(app, &mut st, false);
}

fn redraw(app: &AppHandle, st: &mut TrayState, menu_changed: bool) {
    // Back to "system" with no portal reading: GTK's default again.
    let wanted = st.window_dark();
    if st.window_dark != wanted && crate::theme::set_window_theme(app, wanted) {
        st.window_dark = wanted;
    }
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    if menu_changed {
        match build_menu(app, &menu_lines(st.menu.as_ref())) {
            Ok(menu) => {
                if let Err(e) = tray.set_menu(Some(menu)) {
                    tracing::warn!(error = %e, "tray menu update failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "tray menu could not be built"),
        }
    }
    let icon = (
        st.dark(),
        st.menu.as_ref().is_some_and(|m| m.unread_chats > 0),
    );
    if st.icon != Some(icon) {
        let image = Image::new_owned(icon_pixels(icon.0, icon.1), ICON_SIZE, ICON_SIZE);
        match tray.set_icon(Some(image)) {
            Ok(()) => st.icon = Some(icon),
            Err(e) => tracing::warn!(error = %e, "tray icon update failed"),
        }
    }
}

fn build_menu(app: &AppHandle, lines: &[MenuLine]) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    let presence = Submenu::with_id(app, "presence", "Presence", true)?;
    let mut presence_added = false;
    for line in lines {
        match line {
            MenuLine::Item { command, label } => {
                menu.append(&MenuItem::with_id(
                    app,
                    command.id(),
                    label,
                    true,
                    None::<&str>,
                )?)?;
            }
            MenuLine::Info(text) => {
                menu.append(&MenuItem::with_id(app, "info", text, false, None::<&str>)?)?;
            }
            MenuLine::Presence {
                presence: p,
                checked,
            } => {
                let item = CheckMenuItem::with_id(
                    app,
                    TrayCommand::Presence(*p).id(),
                    presence_label(*p),
                    // Shown while current, never chosen.
                    !matches!(*p, Presence::Inactive | Presence::Other),
                    *checked,
                    None::<&str>,
                )?;
                presence.append(&item)?;
                if !presence_added {
                    presence_added = true;
                    menu.append(&presence as &dyn IsMenuItem<Wry>)?;
                }
            }
            MenuLine::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

/// A menu item was clicked.
fn clicked(app: &AppHandle, id: &str) {
    let Some(command) = TrayCommand::parse(id) else {
        return;
    };
    tracing::debug!(?command, "tray");
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        let result = match command {
            TrayCommand::Open => {
                show_main_window(&app);
                Ok(())
            }
            TrayCommand::Quit => {
                shell.prepare_quit(&app).await;
                app.exit(0);
                Ok(())
            }
            TrayCommand::Accept(offer_id) => shell.act(AgentAction::Accept { offer_id }).await,
            TrayCommand::Reject(offer_id) => {
                shell
                    .act(AgentAction::Reject {
                        offer_id,
                        reason: None,
                    })
                    .await
            }
            TrayCommand::RejectInWindow(offer_id) => {
                shell
                    .notification_clicked(
                        NotificationKey::Offer(offer_id),
                        NotificationAction::Open,
                    )
                    .await;
                Ok(())
            }
            TrayCommand::Presence(presence) => {
                shell.act(AgentAction::SetPresence { presence }).await
            }
        };
        if let Err(e) = result {
            tracing::info!(error = %e, ?command, "tray action refused");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_client::engine::TrayOffer;

    #[test]
    fn close_hides_to_the_tray_only_when_a_host_shows_it() {
        assert_eq!(CloseAction::for_tray_host(true), CloseAction::HideToTray);
        assert_eq!(CloseAction::for_tray_host(false), CloseAction::Minimize);
    }

    #[test]
    fn command_ids_round_trip_and_foreign_ids_are_ignored() {
        for c in [
            TrayCommand::Open,
            TrayCommand::Quit,
            TrayCommand::Accept(OfferId(7)),
            TrayCommand::Reject(OfferId(8)),
            TrayCommand::RejectInWindow(OfferId(9)),
            TrayCommand::Presence(Presence::DoNotDisturb),
        ] {
            assert_eq!(TrayCommand::parse(&c.id()), Some(c));
        }
        for bad in [
            "",
            "info",
            "accept:",
            "accept:x",
            "presence:sleepy",
            "evil:1",
        ] {
            assert_eq!(TrayCommand::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn labels_escape_mnemonics_and_drop_controls_and_bidi_overrides() {
        assert_eq!(menu_label("Tom & Jerry_1"), "Tom && Jerry_1");
        assert_eq!(menu_label("a\u{202E}b\u{0}c\nd"), "abcd");
        let long = menu_label(&"x".repeat(100_000));
        assert_eq!(long.chars().count(), MAX_LABEL + 1);
        assert!(long.ends_with('…'));
    }

    fn offer(id: i64, can_reject: bool, needs_reason: bool) -> TrayOffer {
        TrayOffer {
            offer_id: OfferId(id),
            label: format!("Accept Chat from C{id}"),
            can_reject,
            reject_needs_reason: needs_reason,
        }
    }

    #[test]
    fn menu_has_one_accept_per_offer_rejects_where_allowed_unread_and_presence() {
        let m = TrayMenu {
            presence: Some(Presence::Busy),
            unread_chats: 3,
            offers: vec![
                offer(2, true, false),
                offer(1, false, false),
                offer(3, true, true),
            ],
        };
        let lines = menu_lines(Some(&m));
        let commands: Vec<TrayCommand> = lines
            .iter()
            .filter_map(|l| match l {
                MenuLine::Item { command, .. } => Some(*command),
                _ => None,
            })
            .collect();
        assert_eq!(
            commands,
            vec![
                TrayCommand::Accept(OfferId(2)),
                TrayCommand::Reject(OfferId(2)),
                TrayCommand::Accept(OfferId(1)),
                TrayCommand::Accept(OfferId(3)),
                TrayCommand::RejectInWindow(OfferId(3)),
                TrayCommand::Open,
                TrayCommand::Quit,
            ]
        );
        assert!(lines.contains(&MenuLine::Info("3 unread chats".into())));
        let presences: Vec<_> = lines
            .iter()
            .filter_map(|l| match l {
                MenuLine::Presence { presence, checked } => Some((*presence, *checked)),
                _ => None,
            })
            .collect();
        assert_eq!(presences.len(), 5, "inactive is not offered as a choice");
        assert!(presences.contains(&(Presence::Busy, true)));
        assert_eq!(presences.iter().filter(|p| p.1).count(), 1);
    }

    #[test]
    fn signed_out_menu_is_open_and_quit() {
        let lines = menu_lines(None);
        assert_eq!(lines.len(), 2);
    }

    fn pixel(px: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * ICON_SIZE + x) * 4) as usize;
        [px[i], px[i + 1], px[i + 2], px[i + 3]]
    }

    #[test]
    fn icon_variants_differ_in_ink_and_badge() {
        let light = icon_pixels(false, false);
        let dark = icon_pixels(true, false);
        let badged = icon_pixels(false, true);
        assert_eq!(light.len(), (ICON_SIZE * ICON_SIZE * 4) as usize);
        // The jack in the middle is ink: dark ink on light panels and
        // light ink on dark ones.
        let (l, d) = (pixel(&light, 16, 16), pixel(&dark, 16, 16));
        assert!(u32::from(l[0]) + u32::from(l[1]) + u32::from(l[2]) < 200);
        assert!(u32::from(d[0]) + u32::from(d[1]) + u32::from(d[2]) > 600);
        // The badge corner is transparent without unread, red with.
        assert_eq!(pixel(&light, 27, 4)[3], 0);
        assert_eq!(pixel(&badged, 27, 4), [0xDC, 0x26, 0x26, 0xFF]);
    }
}
