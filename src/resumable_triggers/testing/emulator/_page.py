"""The page behind ``run_page_url``: a run's state, tasks, timeline and repairs, and the runs list.

``run_page_url`` has the real service's shape, ``{base}/?o={workspace}#job/{job}/run/{run}``, and a
browser never sends a URL's fragment to the server. So ``/`` is a shell whose tiny inline script reads
``location.hash`` and fills itself from fragments of HTML the emulator renders::

    GET /?o=<workspace>#job/<job>/run/<run>      the shell: the runs list, and the script, which fetches
     └─ script ─> GET /__emulator/ui/runs/<run>  one run (a task run's id: its parent, task picked out)
              └─> GET /__emulator/ui/runs        the runs list again (while the run is active, both
                                                 are fetched again every 2 s, so the page follows it)

Emulator-only, and said so on the page: these routes need no credentials, as the control API under
``/__emulator/`` needs none (both are loopback test infrastructure; the real workspace's page needs a
login). They are read-only, and like the control API they are not API traffic: not counted, not
logged, never throttled or faulted, so a test may look at a run without changing what it asserts.
Everything is inline (style, script, a ``data:`` favicon): the page fetches nothing from elsewhere
and works offline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from html import escape

from aiohttp import web

from ._request_path import RequestPath
from ._run_view import Phases, RunRow, RunsView, RunView, StateView, TaskView, read_run, read_runs

UI_PREFIX = "/__emulator/ui/"
RUNS_ROUTE = UI_PREFIX + "runs"
# The browser may keep nothing: a run's page must show its state now, not when it was first opened.
_NO_STORE = {"Cache-Control": "no-store"}
# How often the script fetches an active run again, in milliseconds.
REFRESH_MILLISECONDS = 2000
# segment(kind, begin_ms, length_ms, title) -> one bar of the timeline
_Segment = Callable[[str, int, int, str], str]


def is_page(method: str, path: str) -> bool:
    """Whether a request is for the page (``/``) or one of its fragments (``/__emulator/ui/...``)."""
    return method in ("GET", "HEAD") and (path == "/" or path.startswith(UI_PREFIX))


def serve_page(path: RequestPath, request: web.Request) -> web.Response:
    if request.path == "/":
        runs = path.read(read_runs)
        return _html(_shell(path.workspace_id, request.query.get("o"), runs))
    if request.path == RUNS_ROUTE:
        return _html(render_runs(path.read(read_runs)))
    tail = request.path[len(RUNS_ROUTE) + 1 :] if request.path.startswith(RUNS_ROUTE + "/") else ""
    if not tail.isdigit():
        return _html(_notice(f"No emulator page at {request.path}."), 404)
    run_id = int(tail)
    view = path.read(lambda ws, now, page_url: read_run(ws, run_id, now, page_url))
    if view is None:
        message = f"Run {run_id} does not exist in this workspace (never submitted, deleted or expired)."
        return _html(_notice(message, run_id=run_id), 404)
    return _html(render_run(view))


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=_NO_STORE)


# -- formatting ---------------------------------------------------------------------------------


def _when(ms: int) -> str:
    if not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def _badge(state: StateView) -> str:
    kind = "active" if state.active else ("ok" if state.result == "SUCCESS" else "bad")
    if state.result in ("SKIPPED", "EXCLUDED") or state.life_cycle == "SKIPPED":
        kind = "meh"
    return f'<span class="badge {kind}" data-state="{escape(state.label)}">{escape(state.label)}</span>'


def _table(head: Iterable[str], rows: Iterable[str], *, name: str) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<table class="{name}"><thead><tr>{cells}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _notice(message: str, *, run_id: int | None = None) -> str:
    attribute = "" if run_id is None else f' data-run-id="{run_id}"'
    return f'<article class="notice"{attribute} data-active="false"><p>{escape(message)}</p></article>'


# -- one run ------------------------------------------------------------------------------------


def render_run(view: RunView) -> str:
    """The HTML fragment of one run (``GET /__emulator/ui/runs/<run>``)."""
    facts = [
        ("Run", f"{view.run_id}"),
        ("Job", f"{view.job_id}"),
        ("Run type", view.run_type),
        ("Launched by", view.creator),
        ("Started", _when(view.phases.start_ms)),
        ("Ended", _when(view.phases.end_ms) if not view.state.active else "still running"),
        ("Duration", _seconds(view.end_ms - view.phases.start_ms)),
    ]
    listed = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    tone = "message" if view.state.active or view.state.result == "SUCCESS" else "message failed"
    message = f'<p class="{tone}">{escape(view.state.message)}</p>' if view.state.message else ""
    active = "true" if view.state.active else "false"
    return (
        f'<article class="run" data-run-id="{view.focus_run_id}" data-parent-run-id="{view.run_id}"'
        f' data-state="{escape(view.state.label)}" data-active="{active}">'
        f"<h1>{escape(view.run_name or f'Run {view.run_id}')} {_badge(view.state)}</h1>{message}"
        f'<dl class="facts">{listed}</dl>'
        f"<h2>Tasks</h2>{_tasks(view)}"
        f"<h2>Timeline</h2>{_timeline(view)}"
        f"<h2>Repair history</h2>{_repairs(view)}"
        "</article>"
    )


def _tasks(view: RunView) -> str:
    head = ("Task", "Task run", "Attempt", "State", "Message", "Started", "Setup", "Execution", "Cleanup")
    rows = []
    for task in view.tasks:
        picked = ' class="focus"' if task.run_id == view.focus_run_id else ""
        p = task.phases
        cells = [
            escape(task.task_key),
            str(task.run_id),
            str(task.attempt_number),
            _badge(task.state),
            escape(task.state.message),
            escape(_when(p.start_ms)),
            *(escape(_seconds(ms)) if p.end_ms else "—" for ms in (p.setup_ms, p.execution_ms, p.cleanup_ms)),
        ]
        row = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr data-task-key="{escape(task.task_key)}"{picked}>{row}</tr>')
    return _table(head, rows, name="tasks")


def _timeline(view: RunView) -> str:
    """One bar per task on the run's time axis: setup, execution and cleanup, or, while the task is
    active, one bar up to now."""
    start, end = view.phases.start_ms, view.end_ms
    span = max(end - start, 1)

    def segment(kind: str, begin: int, length: int, title: str) -> str:
        left, width = 100 * (begin - start) / span, max(100 * length / span, 0.5)
        return (
            f'<span class="seg {kind}" style="left:{left:.2f}%;width:{width:.2f}%"'
            f' title="{escape(title)}"></span>'
        )

    rows = []
    for task in view.tasks:
        # A retried task has one lane per attempt.
        label = task.task_key if not task.attempt_number else f"{task.task_key} #{task.attempt_number}"
        rows.append(
            f'<div class="lane"><span class="label">{escape(label)}</span>'
            f'<span class="track">{"".join(_segments(task, view.now_ms, segment))}</span></div>'
        )
    axis = f'<div class="axis"><span>{_when(start)}</span><span>{_when(end)}</span></div>'
    return f'<div class="timeline">{"".join(rows)}{axis}</div>'


def _segments(task: TaskView, now_ms: int, segment: _Segment) -> list[str]:
    p: Phases = task.phases
    if task.state.life_cycle == "WAITING_FOR_RETRY":
        return []  # the attempt starts after the interval: nothing to draw yet
    if not p.end_ms:
        return [segment("active", p.start_ms, p.end_or(now_ms) - p.start_ms, task.state.life_cycle)]
    parts, at = [], p.start_ms
    for kind, length in (("setup", p.setup_ms), ("execution", p.execution_ms), ("cleanup", p.cleanup_ms)):
        if length:
            parts.append(segment(kind, at, length, f"{kind} {_seconds(length)}"))
        at += length
    return parts or [segment("execution", p.start_ms, p.end_ms - p.start_ms, task.state.label)]


def _repairs(view: RunView) -> str:
    if len(view.repairs) <= 1:
        return '<p class="none">Not repaired: the run has only its original attempt.</p>'
    head = ("Attempt", "Repair id", "State", "Started", "Ended", "Task runs")
    rows = []
    for entry in view.repairs:
        cells = [
            escape(entry.kind),
            "—" if entry.repair_id is None else str(entry.repair_id),
            _badge(entry.state),
            escape(_when(entry.start_ms)),
            escape(_when(entry.end_ms)),
            escape(", ".join(str(i) for i in entry.task_run_ids)),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return _table(head, rows, name="repairs")


# -- the runs list and the shell ------------------------------------------------------------------


def render_runs(runs: RunsView) -> str:
    """The HTML fragment of the workspace's runs list (``GET /__emulator/ui/runs``), newest first."""

    def row(r: RunRow) -> str:
        link = f'<a href="#job/{r.job_id}/run/{r.run_id}">{r.run_id}</a>'
        cells = [link, escape(r.run_name), _badge(r.state), escape(_when(r.start_ms)), escape(r.creator)]
        return f'<tr data-run-id="{r.run_id}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    shown = f"newest {len(runs.rows)} of {runs.total}" if runs.total > len(runs.rows) else str(runs.total)
    table = _table(("Run", "Name", "State", "Started", "Launched by"), map(row, runs.rows), name="runs")
    return f"<h2>Runs in this workspace ({shown})</h2>{table if runs.rows else '<p>No runs yet.</p>'}"


def _shell(workspace_id: int, linked_workspace: str | None, runs: RunsView) -> str:
    warning = ""
    if linked_workspace and linked_workspace != str(workspace_id):
        warning = (
            f'<p class="warning">This link names workspace {escape(linked_workspace)}; this emulator is '
            f"workspace {workspace_id}.</p>"
        )
    return _SHELL.format(
        workspace_id=workspace_id,
        warning=warning,
        runs=render_runs(runs),
        style=_STYLE,
        script=_SCRIPT.replace("@REFRESH@", str(REFRESH_MILLISECONDS)).replace("@ROUTE@", RUNS_ROUTE),
    )


_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Databricks emulator · workspace {workspace_id}</title>
<link rel="icon" href="data:,"><style>{style}</style></head>
<body><header><strong>Databricks emulator</strong> · workspace {workspace_id}
<span class="note">emulator-only page: no login, read-only</span></header>
<main>{warning}<section id="run" data-run-id=""><p class="none">Open a run from the list, or follow a
run_page_url (<code>/?o={workspace_id}#job/JOB/run/RUN</code>).</p></section>
<section id="runs">{runs}</section></main>
<script>{script}</script></body></html>
"""

# Reads the fragment, the one part of run_page_url the server never sees. No framework, no fetch
# from elsewhere: the page works offline.
_SCRIPT = """
(function () {
  var run = document.getElementById("run"), runs = document.getElementById("runs"), timer = null;
  async function fragment(url) {
    var reply = await fetch(url, {cache: "no-store"});
    return reply.text();
  }
  async function show() {
    clearTimeout(timer);
    var named = /^#job\\/(\\d+)\\/run\\/(\\d+)$/.exec(location.hash);
    try {
      if (named) {
        run.innerHTML = await fragment("@ROUTE@/" + named[2]);
        run.dataset.runId = named[2];
      }
      runs.innerHTML = await fragment("@ROUTE@");
      var row = named && runs.querySelector('tr[data-run-id="' + named[2] + '"]');
      if (row) row.classList.add("focus");
    } catch (error) {
      run.innerHTML = '<p class="warning">The emulator did not answer: ' + error + "</p>";
      return;
    }
    var article = run.querySelector("article");
    if (article && article.dataset.active === "true") timer = setTimeout(show, @REFRESH@);
  }
  addEventListener("hashchange", show);
  show();
})();
"""

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b3139;color:#fff;padding:10px 20px}header .note{float:right;opacity:.7}
main{padding:16px 20px;max-width:1200px}section,article{background:#fff;border-radius:6px;
padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0002}#run article{box-shadow:none;
padding:0;margin:0}h1{font-size:20px;margin:4px 0}
h2{font-size:15px;margin:16px 0 6px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-weight:600;color:#5b6470}tr.focus{background:#fff7d6}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.ok{background:#d8f5e1;color:#146c2e}.bad{background:#fde2e1;color:#a4161a}
.active{background:#dbeafe;color:#1d4ed8}.meh{background:#eceff3;color:#5b6470}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}.facts dt{color:#5b6470}
.facts dd{margin:0}.message{color:#5b6470}.message.failed{color:#a4161a}
.warning{background:#fff3cd;padding:8px}.none{color:#5b6470}
.lane{display:flex;align-items:center;margin:4px 0}.label{width:160px;overflow:hidden}
.track{position:relative;flex:1;height:14px;background:#eef1f4;border-radius:3px}
.seg{position:absolute;top:0;bottom:0;border-radius:3px}.seg.setup{background:#9ca3af}
.seg.execution{background:#16a34a}.seg.cleanup{background:#f59e0b}
.seg.active{background:repeating-linear-gradient(45deg,#60a5fa,#60a5fa 6px,#93c5fd 6px,#93c5fd 12px)}
.axis{display:flex;justify-content:space-between;color:#5b6470;font-size:12px;margin-left:160px}
"""
