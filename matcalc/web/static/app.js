// matcalc's page: one expression, its variables, its derivative. All state lives in `state` and in the URL;
// every answer comes from this server's JSON API (docs/web.md). Nothing here evaluates user text.
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = ["scalar", "vector", "matrix", "symmetric"];
const state = { expr: "", wrt: "", layout: "numerator", order: 1, decls: {}, target: "numpy" };
let last = null;          // the last successful /api/derive reply
let code = {};            // target -> source, for `last`
let seq = 0;              // the number of the newest derivation request; older replies are dropped
let timer = null;

// --- the URL ------------------------------------------------------------------------------------------
function readURL() {
  const q = new URLSearchParams(location.search);
  state.expr = q.get("expr") ?? "x' A x";
  state.wrt = q.get("wrt") ?? "";
  state.layout = q.get("layout") === "denominator" ? "denominator" : "numerator";
  state.order = q.get("order") === "2" ? 2 : 1;
  state.target = ["numpy", "jax", "torch"].includes(q.get("code")) ? q.get("code") : "numpy";
  state.decls = {};
  for (const part of (q.get("let") ?? "").split(";")) {
    const i = part.indexOf(":");
    if (i > 0) state.decls[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
}

function stateURL() {
  const q = new URLSearchParams();
  q.set("expr", state.expr);
  if (state.wrt) q.set("wrt", state.wrt);
  if (state.layout !== "numerator") q.set("layout", state.layout);
  if (state.order !== 1) q.set("order", String(state.order));
  const lets = Object.entries(state.decls).map(([n, k]) => `${n}:${k}`).join(";");
  if (lets) q.set("let", lets);
  if (state.target !== "numpy") q.set("code", state.target);
  return `${location.pathname}?${q.toString()}`;
}

function writeURL() { history.replaceState(null, "", stateURL()); }

// --- talking to the server --------------------------------------------------------------------------------
async function post(endpoint, body) {
  const r = await fetch(`/api/${endpoint}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return r.json();
}

function occurs(name, text) {
  // does `name` occur in `text` as a whole identifier? (then it is worth sending as wrt)
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${esc}($|[^\\p{L}\\p{N}_])`, "u").test(text);
}

function request() {
  const body = { expr: state.expr, layout: state.layout, order: state.order, declarations: state.decls };
  if (state.wrt && occurs(state.wrt, state.expr)) body.wrt = state.wrt;
  return body;
}

// --- rendering ---------------------------------------------------------------------------------------------
function tex(el, latex, display = true) {
  if (window.katex) {
    katex.render(latex, el, { displayMode: display, throwOnError: false, output: "htmlAndMathml" });
  } else {
    el.textContent = latex;
  }
}

function showError(err) {
  $("error").hidden = !err;
  $("expr").setAttribute("aria-invalid", err ? "true" : "false");
  if (!err) return;
  $("error-message").textContent = `${err.type}: ${err.message}` +
    (err.position == null ? "" : ` (at position ${err.position})`);
  $("error-caret").textContent = err.caret || "";
}

function setStatus(text) { $("status").textContent = text; }

function renderVariables(vars) {
  const body = document.querySelector("#vars tbody");
  const active = document.activeElement;
  const keep = active && active.dataset && active.dataset.var ? [active.dataset.var, active.dataset.field] : null;
  body.textContent = "";
  for (const v of vars) {
    const tr = document.createElement("tr");
    tr.dataset.var = v.name;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = v.name;
    const kind = document.createElement("select");
    kind.setAttribute("aria-label", `kind of ${v.name}`);
    for (const k of KINDS) kind.add(new Option(k, k, false, k === v.kind));
    const dims = document.createElement("input");
    dims.type = "text";
    dims.size = 8;
    dims.value = v.dims.join(", ");
    dims.disabled = v.kind === "scalar";
    dims.setAttribute("aria-label", `dimensions of ${v.name}`);
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "inferred";
    reset.title = `forget the declaration of ${v.name}`;
    reset.disabled = !(v.name in state.decls);
    for (const [el, field] of [[kind, "kind"], [dims, "dims"], [reset, "reset"]]) {
      el.dataset.var = v.name;
      el.dataset.field = field;
    }
    kind.addEventListener("change", () => declare(v.name, kind.value, dims.value));
    dims.addEventListener("change", () => declare(v.name, kind.value, dims.value));
    reset.addEventListener("click", () => { delete state.decls[v.name]; derive(); });
    for (const el of [name, kind, dims, reset]) {
      const td = el === name ? el : document.createElement("td");
      if (td !== el) td.append(el);
      tr.append(td);
    }
    body.append(tr);
  }
  if (keep) {
    // keep the keyboard where it was; a control that is now disabled hands focus to the row's kind
    const row = `[data-var="${CSS.escape(keep[0])}"]`;
    const again = body.querySelector(`${row}[data-field="${keep[1]}"]`);
    if (again && !again.disabled) again.focus();
    else body.querySelector(`${row}[data-field="kind"]`)?.focus();
  }
}

function declare(name, kind, dimsText) {
  const dims = dimsText.split(",").map((d) => d.trim()).filter(Boolean);
  const first = dims[0] || "n";
  const spelled = {
    scalar: "scalar", vector: `vector(${first})`, symmetric: `symmetric(${first})`,
    matrix: `matrix(${dims.length > 1 ? dims[0] : (dims[0] || "m")}, ${dims[1] || first})`,
  }[kind];
  state.decls[name] = spelled;
  derive();
}

function renderWrt(vars, wrt) {
  const sel = $("wrt");
  sel.textContent = "";
  for (const v of vars) sel.add(new Option(`${v.name} (${v.kind})`, v.name, false, v.name === wrt));
}

function renderSteps(steps) {
  const ol = $("steps");
  ol.textContent = "";
  for (const s of steps || []) {
    const li = document.createElement("li");
    li.className = `step ${s.kind}`;
    const m = document.createElement("span");
    if (s.latex) tex(m, s.latex, false); else m.textContent = s.text;
    li.append(m);
    if (s.rule) {
      const r = document.createElement("span");
      r.className = "rule";
      r.textContent = s.rule;
      li.append(r);
    }
    ol.append(li);
  }
}

function renderTensor(t) {
  $("tensor").hidden = !t;
  if (!t) return;
  tex($("tensor-map"), t.linear_map_latex);
  if (t.kronecker_latex) tex($("tensor-kron"), t.kronecker_latex); else $("tensor-kron").textContent = "none";
  $("tensor-index").textContent = t.index || "none";
}

function render(reply) {
  last = reply;
  const res = $("result");
  tex($("function"), `f = ${reply.function.latex}`, false);
  tex(res, reply.result.equation_latex);
  res.dataset.text = reply.result.text;
  res.dataset.latex = reply.result.latex;
  $("result-kind").textContent = `${reply.result.kind}, ${reply.layout} layout` +
    (reply.order === 2 ? ", second order" : "") + (reply.tensor ? "" : ` · plain text: ${reply.result.unicode}`);
  state.wrt = reply.wrt;
  renderWrt(reply.variables, reply.wrt);
  renderVariables(reply.variables);
  renderTensor(reply.tensor);
  const notes = $("notes");
  notes.textContent = "";
  // what was assumed about each name, then the readings users rarely intend (AssumptionWarnings)
  const lines = (reply.where ? [reply.where] : []).concat((reply.warnings || []).map(w => "note: " + w),
                                                          reply.notes || []);
  for (const n of lines) {
    const li = document.createElement("li");
    li.textContent = n;
    notes.append(li);
  }
  renderSteps(reply.steps);
  $("check-result").textContent = "";
  writeURL();
}

// --- actions ---------------------------------------------------------------------------------------------
async function derive() {
  clearTimeout(timer);
  const mine = ++seq;
  const body = request();
  setStatus("deriving…");
  let reply;
  try {
    reply = await post("derive", body);
  } catch (e) {
    if (mine === seq) setStatus(`the server did not answer (${e})`);
    return;
  }
  if (mine !== seq) return;
  if (!reply.ok) {
    showError(reply.error);
    $("output").classList.add("stale");  // what is shown belongs to the last expression that derived
    if (!Object.keys(code).length) $("code").textContent = "";
    setStatus("");
    writeURL();
    return;
  }
  showError(null);
  $("output").classList.remove("stale");
  render(reply);
  setStatus(`derived in ${reply.elapsed_ms.toFixed(1)} ms`);
  loadCode(body, mine);
}

async function loadCode(body, mine) {
  code = {};
  $("code").textContent = "generating…";
  let reply;
  try {
    reply = await post("code", { ...body, wrt: last.wrt });
  } catch (e) {
    if (mine === seq) $("code").textContent = `the server did not answer (${e})`;
    return;
  }
  if (mine !== seq) return;
  if (!reply.ok) { $("code").textContent = reply.error.message; return; }
  code = reply.code;
  for (const [t, err] of Object.entries(reply.errors || {})) code[t] = `# no ${t} code: ${err.message}`;
  showCode();
}

function showCode() {
  for (const b of document.querySelectorAll("#code-tabs [role=tab]")) {
    b.setAttribute("aria-selected", String(b.dataset.target === state.target));
  }
  $("code").textContent = code[state.target] ?? "";
}

function later() { clearTimeout(timer); timer = setTimeout(derive, 250); }

async function runCheck() {
  if (!last) return;
  const limit = Math.min(30, Math.max(1, Number($("time-limit").value) || 10));
  const bar = $("check-progress");
  const button = $("check");
  const out = $("check-result");
  bar.max = limit;
  bar.value = 0;
  bar.hidden = false;
  button.disabled = true;
  out.textContent = `checking against SymPy (at most ${limit} s)…`;
  const start = performance.now();
  const tick = setInterval(() => { bar.value = Math.min(limit, (performance.now() - start) / 1000); }, 100);
  try {
    const reply = await post("check", { ...request(), wrt: last.wrt, time_limit: limit });
    out.textContent = reply.ok ? reply.message : `${reply.error.type}: ${reply.error.message}`;
    out.dataset.verdict = reply.ok ? String(reply.verdict) : "error";
  } catch (e) {
    out.textContent = `the server did not answer (${e})`;
  } finally {
    clearInterval(tick);
    bar.hidden = true;
    button.disabled = false;
  }
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copied").textContent = `copied ${what}`;
}

function insert(text, wrap) {
  const el = $("expr");
  const [a, b] = [el.selectionStart ?? el.value.length, el.selectionEnd ?? el.value.length];
  const middle = wrap ? `${wrap}${el.value.slice(a, b)}${wrap}` : text;
  el.value = el.value.slice(0, a) + middle + el.value.slice(b);
  const caret = wrap && a === b ? a + 1 : a + middle.length;
  el.focus();
  el.setSelectionRange(caret, caret);
  state.expr = el.value;
  later();
}

async function loadExamples() {
  const reply = await fetch("/api/examples").then((r) => r.json()).catch(() => ({ examples: [] }));
  const nav = $("examples");
  for (const ex of reply.examples) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = ex.title;
    b.title = `${ex.expr} (${ex.source})`;
    b.addEventListener("click", () => {
      Object.assign(state, { expr: ex.expr, wrt: ex.wrt || "", layout: ex.layout || "numerator",
        order: ex.order || 1, decls: { ...(ex.declarations || {}) } });
      syncControls();
      derive();
    });
    nav.append(b);
  }
}

function syncControls() {
  $("expr").value = state.expr;
  $("layout").value = state.layout;
  $("order").value = String(state.order);
}

function wire() {
  $("expr").addEventListener("input", () => { state.expr = $("expr").value; later(); });
  $("expr").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.ctrlKey) { e.preventDefault(); derive(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runCheck(); }
  });
  $("wrt").addEventListener("change", () => { state.wrt = $("wrt").value; derive(); });
  $("layout").addEventListener("change", () => { state.layout = $("layout").value; derive(); });
  $("order").addEventListener("change", () => { state.order = Number($("order").value); derive(); });
  for (const b of document.querySelectorAll("#ops button")) {
    b.addEventListener("click", () => insert(b.dataset.insert, b.dataset.wrap));
  }
  for (const b of document.querySelectorAll("#code-tabs [role=tab]")) {
    b.addEventListener("click", () => { state.target = b.dataset.target; showCode(); writeURL(); });
  }
  $("check").addEventListener("click", runCheck);
  $("copy-latex").addEventListener("click", () => last && copy(last.result.latex, "LaTeX"));
  $("copy-text").addEventListener("click", () => last && copy(last.result.text, "text"));
  $("copy-code").addEventListener("click", () => copy(code[state.target] ?? "", `${state.target} code`));
  $("share").addEventListener("click", () => copy(new URL(stateURL(), location.href).href, "link"));
}

document.addEventListener("DOMContentLoaded", () => {
  readURL();
  syncControls();
  wire();
  loadExamples();
  derive();
});
