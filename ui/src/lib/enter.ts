// Forms without <form>. WebKitGTK keeps memory for every <form> element
// that held controls, for as long as the page lives: a throw-away page that
// created and dropped a nine-field form 50 times a second grew its web
// process by about 1 MiB/s, the same fields without the <form> stayed flat
// (issue 7, the app soak). Panels and dialogs that open again and again
// (hand-on, settings) therefore group their fields in a plain element,
// submit on Enter through this action and check their fields with
// `fieldsValid`. Sign-in keeps its <form>: it is made once a session, and
// password managers look for it.

// Input types where Enter submits a <form> ("implicit submission"); not
// on a checkbox, a slider or a button.
const NOT_TEXT = new Set(["checkbox", "radio", "range", "button", "submit", "reset", "file", "color", "image"]);

function submitsOnEnter(target: EventTarget | null): boolean {
  return target instanceof HTMLInputElement && !NOT_TEXT.has(target.type);
}

/**
 * Svelte action: Enter in a single-line field inside `node` runs `submit`,
 * as it would in a <form>.
 */
export function submitOnEnter(node: HTMLElement, submit: () => void) {
  let run = submit;
  const onKeydown = (e: KeyboardEvent) => {
    if (e.key === "Enter" && !e.isComposing && submitsOnEnter(e.target)) {
      e.preventDefault();
      run();
    }
  };
  node.addEventListener("keydown", onKeydown);
  return {
    update(next: () => void) {
      run = next;
    },
    destroy() {
      node.removeEventListener("keydown", onKeydown);
    },
  };
}

/**
 * What a <form> checks before it submits: each field's constraints
 * (`required`, `min`, `max`…). Shows the browser's message on the first
 * field that fails and returns false.
 */
export function fieldsValid(root: HTMLElement | undefined): boolean {
  if (!root) return true;
  const fields = root.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(
    "input, select, textarea",
  );
  for (const field of fields) {
    if (!field.checkValidity()) {
      field.reportValidity();
      return false;
    }
  }
  return true;
}
