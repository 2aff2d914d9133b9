//! Build script: Tauri codegen and the app command manifest.

fn main() {
    // Defining the app manifest makes Tauri check the app's own commands
    // against the capabilities too (otherwise every command is allowed).
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "view_update",
            "last_login",
            "sign_in",
            "start_demo",
            "sign_out",
            "cancel_resume",
            "act",
            "system_theme",
            "search_records",
            "customer_360",
            "earlier_messages",
            "create_contact",
            "create_account",
            "link_record",
            "team_directory",
            "reset_presence",
            "team_conversations",
            "waiting_team_chats",
        ]),
    ))
    .expect("tauri-build failed");
}
