//! A bare Tauri 2 window: one static page, no commands, no plugins. The
//! footprint and cold-start benchmarks compare the app against it, built
//! the same way (release, same tauri version and features) in the same run.
//!
//! The page prints `painted` on stdout (through the page-load event) once
//! the document has loaded, so the benchmark can time "window painted".

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let started = std::time::Instant::now();
    let result = tauri::Builder::default()
        .on_page_load(move |_window, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Finished {
                println!("painted {} ms", started.elapsed().as_millis());
            }
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("bare-window: {e}");
        std::process::exit(1);
    }
}
