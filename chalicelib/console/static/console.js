// Leadloop console: progressive enhancement only (every page works without it). Loaded as an ES module from
// the same origin, so the Content-Security-Policy needs no 'unsafe-inline'.

const MINUTE = 60_000;

function countdown(due, now) {
  const ms = due - now;
  const minutes = Math.floor(Math.abs(ms) / MINUTE);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor(minutes / 60) % 24;
  const mins = minutes % 60;
  const text = days ? `${days}d ${hours}h` : hours ? `${hours}h ${mins}m` : `${mins}m`;
  return ms >= 0 ? `due in ${text}` : `due ${text} ago`;
}

// SLA countdowns tick while the page is open (the server rendered them once).
function tick() {
  const now = Date.now();
  for (const element of document.querySelectorAll("[data-due]")) {
    const due = Date.parse(element.dataset.due);
    if (!Number.isNaN(due)) element.textContent = countdown(due, now);
  }
}

// Disqualify and lost end a lead's journey: ask once before sending.
const FINAL = new Set(["disqualify", "lost"]);
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && FINAL.has(form.dataset.action)) {
    if (!window.confirm(`${form.dataset.action === "lost" ? "Mark this lead lost" : "Disqualify this lead"}?`)) {
      event.preventDefault();
    }
  }
});

tick();
setInterval(tick, 30_000);

// --- marketing: the template and rules editors ---

// A form that asks before it is sent (deleting a template).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// "Line 7" in the problems list puts the caret on that line of the source.
function goToLine(textarea, line) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  const height = textarea.scrollHeight / Math.max(lines.length, 1);
  textarea.scrollTop = Math.max(0, (line - 3) * height);
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target.closest("[data-line]") : null;
  const source = document.getElementById("source");
  if (target && source instanceof HTMLTextAreaElement) goToLine(source, Number(target.dataset.line));
});

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (tag === "pre") node.tabIndex = 0; // a region that may scroll is reachable by keyboard
  if (text !== undefined) node.textContent = text; // text, never markup: a message may quote the template
  if (className) node.className = className;
  return node;
}

function showProblems(box, problems, lines) {
  box.replaceChildren();
  if (!problems.length) {
    box.append(element("p", "No problems: this can be saved.", "notice ok"));
    return;
  }
  const list = element("ul", undefined, "problems");
  for (const problem of problems) {
    const item = element("li");
    if (problem.line) {
      const button = element("button", `Line ${problem.line}`, "link");
      button.type = "button";
      button.dataset.line = String(problem.line);
      item.append(button);
    } else {
      item.append(element("span", "Document"));
    }
    if (problem.field) item.append(" · ", element("code", problem.field));
    item.append(`: ${problem.message}`);
    if (problem.line && problem.line <= lines.length) {
      item.append(element("pre", `${problem.line} | ${lines[problem.line - 1]}`, "at-line"));
    }
    list.append(item);
  }
  box.append(list);
}

function showPreview(box, preview, refused) {
  if (!box) return;
  box.replaceChildren();
  if (!preview) {
    box.append(element("p", refused || "No preview until the problems are fixed.", refused ? "alert" : "muted"));
    return;
  }
  const subject = element("p");
  subject.append(element("strong", "Subject:"), " ");
  const text = element("span", preview.subject);
  text.id = "preview-subject";
  subject.append(text);
  const mail = element("pre", preview.text, "mail");
  mail.id = "preview-text";
  const html = element("details");
  html.append(element("summary", "HTML part (as source)"), element("pre", preview.html, "mail"));
  box.append(subject, element("p", `To ${preview.to} · from ${preview.from}`, "muted"), mail, html);
}

// As you type, after a pause: the server runs the save's own checks (and, for a template that passes, its
// preview) on the draft. Answers that arrive out of order are dropped: only the newest draft is shown.
const editorForm = document.getElementById("editor");
if (editorForm instanceof HTMLFormElement && editorForm.dataset.check) {
  const source = editorForm.querySelector("#source");
  const problemsBox = document.getElementById("problems");
  let timer;
  let asked = 0;
  const check = async () => {
    const ticket = ++asked;
    const body = new URLSearchParams();
    body.set("csrf", editorForm.querySelector('input[name="csrf"]').value);
    body.set("source", source.value);
    const lead = editorForm.querySelector("#lead");
    if (lead) body.set("lead", lead.value);
    try {
      const answer = await fetch(editorForm.dataset.check, { method: "POST", body, credentials: "same-origin" });
      if (!answer.ok || ticket !== asked) return;
      const found = await answer.json();
      if (ticket !== asked) return;
      showProblems(problemsBox, found.problems, source.value.split("\n"));
      if ("preview" in found) showPreview(document.getElementById("preview"), found.preview, found.preview_refused);
      editorForm.dataset.checked = String(ticket); // lets a test wait for the check, not for time
    } catch {
      // offline or the server is restarting: the Save button still checks everything
    }
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  };
  source.addEventListener("input", later);
  editorForm.querySelector("#lead")?.addEventListener("change", later);
}

// --- the rules lab: a running backtest's progress, then its report in place ---

// The panel polls the console's status endpoint while the job runs; when it ends, the server's own panel
// (the template the page renders, escaped there) replaces this one, so the draft being edited stays put.
// Without this script the panel's Refresh link shows the same.
const backtestPanel = document.querySelector("#backtest[data-poll]");
if (backtestPanel instanceof HTMLElement) {
  const poll = async () => {
    try {
      const answer = await fetch(backtestPanel.dataset.poll, { credentials: "same-origin" });
      if (!answer.ok) return; // signed out or refused: the Refresh link says why
      const found = await answer.json();
      if (found.panel) {
        const parsed = new DOMParser().parseFromString(found.panel, "text/html").getElementById("backtest");
        if (parsed) {
          parsed.dataset.finished = found.status; // lets a test wait for the report, not for time
          backtestPanel.replaceWith(document.adoptNode(parsed));
          return;
        }
      }
      const percent = Math.round(100 * Number(found.progress || 0));
      document.getElementById("backtest-progress")?.setAttribute("value", String(percent));
      const shown = document.getElementById("backtest-percent");
      if (shown) shown.textContent = String(percent);
    } catch {
      // the server is restarting: try again on the next tick
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 300);
}
