// The document's light/dark theme: the agent's choice, else the OS
// preference (the shell's portal reading beats the webview's media query,
// which WebKitGTK may get wrong). Shared by the main and the alert window.
import { ui } from "./state.svelte";

/** Resolves a theme choice against the system preference. */
export function themeFor(choice: "system" | "light" | "dark", systemDark: boolean): "light" | "dark" {
  return choice === "system" ? (systemDark ? "dark" : "light") : choice;
}

/** Keeps `<html data-theme>` current; call during component setup. */
export function followTheme() {
  const mq = window.matchMedia?.("(prefers-color-scheme: dark)");
  let mediaDark = $state(mq?.matches ?? false);
  mq?.addEventListener("change", (e) => (mediaDark = e.matches));
  $effect(() => {
    document.documentElement.dataset.theme = themeFor(
      ui.view?.settings.theme ?? "system",
      ui.systemDark ?? mediaDark,
    );
  });
}
