//! Start at login. Linux: an XDG autostart entry written here, because the
//! usual helper writes the `Exec` path unquoted (a path with a space breaks)
//! and ignores `XDG_CONFIG_HOME`. Windows and macOS: tauri-plugin-autostart,
//! compile-gated. The app starts with `--hidden`: straight to the tray,
//! and on Linux with its launchers' environment ([`launch_command`]).

/// The argument a login start passes.
pub const HIDDEN_ARG: &str = "--hidden";

/// Quotes one `Exec` argument per the Desktop Entry spec, then escapes the
/// backslashes again for the file's string encoding.
pub fn quote_exec_arg(arg: &str) -> String {
    let mut q = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q.replace('\\', "\\\\")
}

/// The start of an `Exec` line that runs the app with the environment its
/// launchers give it ([`switchboard_hub::allocator::LAUNCH_ENVIRONMENT`]:
/// malloc set up for a day-long process), through `env`. The package's
/// desktop entry (`packaging/linux/switchboard.desktop`) starts the same
/// way.
pub fn launch_command() -> String {
    let mut command = String::from("env");
    for (name, value) in switchboard_hub::allocator::LAUNCH_ENVIRONMENT {
        command.push_str(&format!(" {name}={value}"));
    }
    command
}

/// The autostart entry for the executable at `exe`.
pub fn desktop_entry(exe: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Switchboard\nComment=Desktop client for contact-centre agents\nExec={} {} {HIDDEN_ARG}\nIcon=switchboard\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        launch_command(),
        quote_exec_arg(exe)
    )
}

/// Registers or removes the login start.
#[cfg(target_os = "linux")]
pub fn set(_app: &tauri::AppHandle, enabled: bool) -> std::io::Result<()> {
    let Some(path) = switchboard_client::paths::autostart_entry() else {
        return Err(std::io::Error::other("no home directory"));
    };
    if enabled {
        let exe = std::env::current_exe()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, desktop_entry(&exe.to_string_lossy()))
    } else {
        // No entry (or no folder to hold one): nothing to remove.
        match std::fs::remove_file(&path) {
            Err(e)
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

/// Registers or removes the login start.
#[cfg(not(target_os = "linux"))]
pub fn set(app: &tauri::AppHandle, enabled: bool) -> std::io::Result<()> {
    use tauri_plugin_autostart::ManagerExt;
    let m = app.autolaunch();
    let r = if enabled { m.enable() } else { m.disable() };
    r.map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_paths_with_spaces_and_specials_are_quoted() {
        assert_eq!(
            quote_exec_arg("/opt/Switch board/switchboard"),
            "\"/opt/Switch board/switchboard\""
        );
        assert_eq!(quote_exec_arg("/a/$b`c\"d"), "\"/a/\\\\$b\\\\`c\\\\\"d\"");
        let entry = desktop_entry("/home/ada/My Apps/switchboard");
        assert!(
            entry.contains("Exec=env GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1 SWITCHBOARD_MALLOC_TUNED= \"/home/ada/My Apps/switchboard\" --hidden\n"),
            "{entry}"
        );
        assert!(entry.starts_with("[Desktop Entry]\nType=Application\n"));
    }

    #[test]
    fn the_packaged_desktop_entry_and_dev_run_start_the_app_as_the_autostart_entry_does() {
        let template = include_str!("../packaging/linux/switchboard.desktop");
        assert!(
            template.contains(&format!("\nExec={} {{{{exec}}}}\n", launch_command())),
            "{template}"
        );
        let dev = include_str!("../scripts/dev");
        assert!(
            dev.contains(&format!(
                "exec {} \"$CARGO_TARGET_DIR/release/switchboard\" --demo",
                launch_command()
            )),
            "scripts/dev run starts the app without the launchers' environment"
        );
        let config: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json");
        assert_eq!(
            config["bundle"]["linux"]["deb"]["desktopTemplate"],
            "packaging/linux/switchboard.desktop"
        );
    }
}
