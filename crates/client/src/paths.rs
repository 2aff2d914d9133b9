//! Where the client keeps its files. Every path comes from here;
//! `SWITCHBOARD_DATA_DIR` overrides the OS data directory (tests, portable
//! installs).

use std::path::PathBuf;

/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "SWITCHBOARD_DATA_DIR";

/// The directory for the local cache and logs.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("org", "Switchboard", "Switchboard")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".switchboard"))
}

/// The XDG autostart entry (`$XDG_CONFIG_HOME/autostart`, else
/// `~/.config/autostart`) on Linux.
pub fn autostart_entry() -> Option<PathBuf> {
    directories::BaseDirs::new()
        .map(|d| d.config_dir().join("autostart").join("switchboard.desktop"))
}

/// The ids of the desktop notifications the app has on screen, inside
/// `dir` (so a run after a crash can close what it left up).
pub fn shown_notifications_file(dir: &std::path::Path) -> PathBuf {
    dir.join("notifications.json")
}

/// The SQLite cache file inside `dir`.
pub fn cache_file(dir: &std::path::Path) -> PathBuf {
    dir.join("cache.db")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_override_wins_and_the_cache_lives_inside() {
        // Only this test touches the variable in this test binary.
        std::env::set_var(super::DATA_DIR_ENV, "/tmp/sb-test-dir");
        assert_eq!(
            super::data_dir(),
            std::path::PathBuf::from("/tmp/sb-test-dir")
        );
        assert_eq!(
            super::cache_file(&super::data_dir()),
            std::path::PathBuf::from("/tmp/sb-test-dir/cache.db")
        );
        std::env::remove_var(super::DATA_DIR_ENV);
        assert_ne!(
            super::data_dir(),
            std::path::PathBuf::from("/tmp/sb-test-dir")
        );
    }
}
