// Keyboard focus in modal dialogs (the offer alert, settings).

/** What Tab can reach, in document order. */
const TABBABLE = [
  "a[href]",
  "button:not([disabled])",
  "input:not([disabled]):not([type=hidden])",
  "select:not([disabled])",
  "textarea:not([disabled])",
  "summary",
  '[tabindex]:not([tabindex="-1"])',
].join(", ");

/** The controls in `root` that Tab reaches, first to last. */
export function tabbables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(TABBABLE)];
}

/**
 * Svelte action: Tab and Shift+Tab stay in `node` (an aria-modal dialog),
 * wrapping from the last control to the first and back, as the dialog
 * promises assistive technology. Off while `active` is false.
 */
export function trapFocus(node: HTMLElement, active: boolean = true) {
  let on = active;
  const onKeydown = (e: KeyboardEvent) => {
    if (!on || e.key !== "Tab" || e.defaultPrevented) return;
    const items = tabbables(node);
    const at = document.activeElement;
    const inside = at instanceof Node && node.contains(at) && at !== node;
    if (items.length === 0) {
      e.preventDefault();
      node.focus();
    } else if (e.shiftKey && (!inside || at === items[0])) {
      e.preventDefault();
      items[items.length - 1].focus();
    } else if (!e.shiftKey && (!inside || at === items[items.length - 1])) {
      e.preventDefault();
      items[0].focus();
    }
  };
  node.addEventListener("keydown", onKeydown);
  return {
    update(next: boolean = true) {
      on = next;
    },
    destroy() {
      node.removeEventListener("keydown", onKeydown);
    },
  };
}

/**
 * A dialog closed: the keyboard goes back to the control that opened it,
 * unless it went on elsewhere meanwhile (an offer's alert took it). Called
 * from the dialog's teardown, when its own controls are gone.
 */
export function giveFocusBack(opener: HTMLElement | null): void {
  const at = document.activeElement;
  if (opener?.isConnected && (at === null || at === document.body)) opener.focus();
}

/**
 * Whether a key pressed at `target` is for the control or dialog it is in,
 * not for the window's shortcuts: Alt+Down opens a select's list, and a
 * modal dialog (Settings, Team, Waiting, an offer) keeps the keyboard to
 * itself.
 */
export function keyBelongsToTarget(target: EventTarget | null): boolean {
  if (!(target instanceof Element)) return false;
  return target instanceof HTMLSelectElement || target.closest('[role="dialog"], [aria-modal="true"]') !== null;
}
