// Forms without <form>. WebKitGTK keeps memory for every <form> element
// that held controls, for as long as the page lives: a throw-away page that
// created and dropped a nine-field form 50 times a second grew its web
// process by about 1 MiB/s, the same fields without the <form> stayed flat
// (issue 7, the app soak). Panels mounted per conversation therefore group
// their fields in a plain element and submit on Enter through this action.

/**
 * Svelte action: Enter in a single-line field inside `node` runs `submit`,
 * as it would in a <form>.
 */
export function submitOnEnter(node: HTMLElement, submit: () => void) {
  let run = submit;
  const onKeydown = (e: KeyboardEvent) => {
    if (e.key === "Enter" && !e.isComposing && e.target instanceof HTMLInputElement) {
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
