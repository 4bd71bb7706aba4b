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
