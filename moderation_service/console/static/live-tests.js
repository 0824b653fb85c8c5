// Progressive enhancement for the playground: re-run the draft's own tests as the moderator edits it.
// The form works the same without this file (press Try); the server renders every piece of HTML.
(() => {
  const form = document.querySelector("form[data-live-tests]");
  if (!form) return;
  const draft = form.querySelector("#draft");
  const target = document.getElementById("draft-tests-live");
  let timer;
  draft.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const body = new URLSearchParams({ csrf: form.elements.csrf.value, draft: draft.value });
      const answer = await fetch("/console/playground/tests", { method: "POST", body, credentials: "same-origin" });
      if (answer.ok) target.innerHTML = await answer.text();
    }, 600);
  });
})();
