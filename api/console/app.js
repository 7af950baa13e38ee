// MCMP operator console (SPEC §5.7): plain ES module, no build step. It
// speaks only the admin API (/admin/v1) with the session cookie and the
// CSRF token, and shows whatever the API answers, errors (403 for a role
// that may not) included.

const $ = (sel, root = document) => root.querySelector(sel);
let csrf = null;
let events = null;

/** Escapes text for HTML. */
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A wait in ms as seconds ("–" when there is none). */
const age = (ms) => (ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`);
/** A rate per second. */
const perSecond = (r) => (r === undefined ? "–" : Number(r).toFixed(1));
/** A share as a percentage. */
const percent = (r) => (r === undefined ? "–" : `${(Number(r) * 100).toFixed(1)} %`);

function showError(msg) {
  const box = $("#error");
  box.textContent = msg;
  box.hidden = !msg;
}

/** Calls the admin API; throws with the status and error text on failure. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = typeof body === "string" ? "text/csv" : "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const resp = await fetch(`/admin/v1${path}`, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const why = data?.error ? `${data.error.code}: ${data.error.message}` : resp.statusText;
    const err = new Error(`${resp.status} ${why}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

/** Runs a change and reports its failure in the page. */
async function change(what, fn) {
  try {
    showError("");
    await fn();
    await render();
  } catch (e) {
    showError(`${what} refused: ${e.message}`);
  }
}

function table(headers, rows) {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => (c && c.html !== undefined ? `<td>${c.html}</td>` : `<td>${esc(c)}</td>`)).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function form(id, title, fields, button) {
  const inputs = fields
    .map(([name, label, extra = ""]) => `<label>${esc(label)} <input name="${name}" ${extra}></label>`)
    .join("");
  return `<form id="${id}"><h3>${esc(title)}</h3>${inputs}<button type="submit">${esc(button)}</button></form>`;
}

function onSubmit(id, what, fn) {
  const f = $(`#${id}`);
  if (!f) return;
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(new FormData(f).entries());
    change(what, () => fn(values));
  });
}

// ---- screens ----------------------------------------------------------

const screens = {
  async overview(view) {
    view.innerHTML = `<h2>Overview</h2>
      <div class="tiles" id="tiles"><div class="tile">waiting for the first figures…</div></div>
      <h3>Per channel (per second)</h3><div id="channels"></div>
      <h3>Senders</h3><div id="live-senders"></div>
      <h3>Latest alerts</h3><div id="alerts">loading…</div>`;
    const showAlerts = async () => {
      try {
        const { alerts } = await api("GET", "/alerts?limit=10");
        $("#alerts").innerHTML = alerts.length
          ? table(["at", "event", "detail"], alerts.map((a) => [a.at, a.event,
            Object.entries(a.detail).filter(([k]) => k !== "shard").map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")]))
          : "none";
      } catch (e) { $("#alerts").textContent = `alerts: ${e.message}`; }
    };
    await showAlerts();
    let ticks = 0;
    let last = null;
    events = new EventSource("/admin/v1/events");
    events.addEventListener("stats", (ev) => {
      const f = JSON.parse(ev.data);
      const secs = last ? Math.max((Date.parse(f.at) - Date.parse(last.at)) / 1000, 0.001) : 1;
      const rate = (now, before) => (last ? ((now - before) / secs).toFixed(1) : "–");
      const latency = last && f.accept_requests > last.accept_requests
        ? (((f.accept_seconds_sum - last.accept_seconds_sum) / (f.accept_requests - last.accept_requests)) * 1000).toFixed(2) + " ms"
        : "–";
      $("#tiles").innerHTML = [
        ["accepted", Object.values(f.accepted).reduce((a, b) => a + b, 0)],
        ["in memory", f.memory_messages],
        ["not final", f.live_messages],
        ["held (no sender)", f.held],
        ["webhook retries", f.webhook_pending_retries],
        ["accept latency", latency],
      ].map(([k, v]) => `<div class="tile" data-figure="${esc(k)}">${esc(k)}<b>${esc(v)}</b></div>`).join("");
      const rows = Object.keys(f.accepted).map((ch) => {
        const fin = f.final[ch];
        const prev = last?.final[ch] ?? fin;
        return [ch, rate(f.accepted[ch], last?.accepted[ch] ?? 0), rate(fin.delivered, prev.delivered),
          rate(fin.failed, prev.failed), rate(f.rejected[ch], last?.rejected[ch] ?? 0), f.accepted[ch]];
      });
      $("#channels").innerHTML = table(["channel", "accepted/s", "delivered/s", "failed/s", "rejected/s", "accepted total"], rows);
      const senders = Object.entries(f.senders).map(([n, s]) => [n, s.connected, s.queued, age(s.oldest_queued_age_ms), s.in_flight,
        perSecond(s.submitted_per_second), percent(s.error_rate)]);
      $("#live-senders").innerHTML = table(["sender", "connected", "queued", "oldest queued", "in flight", "TPS", "error rate"], senders);
      last = f;
      if (++ticks % 5 === 0) showAlerts();
    });
  },

  async senders(view) {
    const { senders } = await api("GET", "/senders");
    const rows = senders.map((s) => [
      s.name, s.group, (s.channels || []).join(" "), s.transport?.type, s.ability,
      s.state?.connected, s.state?.queued, age(s.state?.oldest_queued_age_ms), s.state?.in_flight,
      perSecond(s.state?.submitted_per_second), percent(s.state?.error_rate), s.state?.sent, s.state?.failed,
      { html: `<button data-act="suspend" data-name="${esc(s.name)}">Suspend</button>
               <button data-act="resume" data-name="${esc(s.name)}">Resume</button>` },
    ]);
    view.innerHTML = `<h2>Senders</h2>` +
      table(["name", "group", "channels", "type", "ability", "connected", "queued", "oldest queued", "in flight", "TPS", "error rate", "sent", "failed", ""], rows) +
      form("sender-form", "Add or replace a sim sender", [["name", "name", "required"], ["group", "group", "required"], ["channels", "channels", 'value="SMS"'], ["carriers", "carriers", 'value="*"']], "Save sender") +
      form("move-form", "Move a sender's queue", [["name", "from", "required"], ["to", "to", "required"]], "Move queue");
    view.querySelectorAll("button[data-act]").forEach((b) => b.addEventListener("click", () => {
      const ability = b.dataset.act === "suspend" ? "unavailable" : "available";
      change(`${b.dataset.act} ${b.dataset.name}`, () => api("PATCH", `/senders/${encodeURIComponent(b.dataset.name)}`, { ability }));
    }));
    onSubmit("sender-form", "Saving the sender", (v) => api("PUT", `/senders/${encodeURIComponent(v.name)}`, {
      group: v.group, channels: v.channels.split(/[ ,]+/).filter(Boolean), carriers: v.carriers.split(/[ ,]+/).filter(Boolean), transport: { type: "sim" },
    }));
    onSubmit("move-form", "Moving the queue", (v) => api("POST", `/senders/${encodeURIComponent(v.name)}/queue/move`, { to: v.to }));
  },

  async queues(view) {
    const [{ senders }, stats] = await Promise.all([api("GET", "/senders"), api("GET", "/stats")]);
    const rows = senders.map((s) => [s.name, s.group, s.ability, s.state?.connected, s.state?.queued, age(s.state?.oldest_queued_age_ms), s.state?.in_flight]);
    view.innerHTML = `<h2>Queues</h2><div class="tiles">
        <div class="tile" data-figure="held">held (no sender)<b>${esc(stats.held)}</b></div>
        <div class="tile">not final<b>${esc(stats.live_messages)}</b></div>
        <div class="tile">scheduled<b>${esc(stats.messages?.by_status?.scheduled ?? 0)}</b></div></div>` +
      table(["sender", "group", "ability", "connected", "queued", "oldest queued", "in flight"], rows) +
      form("scheduled-form", "Scheduled sends of a customer", [["customer", "customer", "required"]], "List") +
      `<div id="scheduled"></div>`;
    $("#scheduled-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const customer = new FormData(ev.target).get("customer");
      try {
        showError("");
        const { messages } = await api("GET", `/messages?customer=${encodeURIComponent(customer)}&status=scheduled`);
        $("#scheduled").innerHTML = table(["id", "src_msg_id", "to", "channel", "accepted", "events"], messages.map((m) =>
          [m.message_id, m.src_msg_id, m.to, m.channel, m.created_at, m.events.map((e) => `${e.status}@${e.at}`).join(" ")]));
      } catch (e) { showError(`Scheduled sends: ${e.message}`); }
    });
  },

  async customers(view) {
    const { customers } = await api("GET", "/customers");
    const rows = customers.map((c) => [c.group_code, c.name, c.vas, c.prepaid, c.balance ?? ""]);
    view.innerHTML = `<h2>Customers</h2>` + table(["group code", "name", "reseller", "prepaid", "balance"], rows) +
      form("customer-form", "Customer", [["group_code", "group code", "required"], ["name", "name", "required"]], "Save customer") +
      form("service-form", "Service", [["group_code", "group code", "required"], ["channel", "channel", 'value="SMS"'], ["tps", "TPS (0: no limit)", 'value="0"']], "Enable channel") +
      form("client-form", "Client", [["group_code", "group code", "required"], ["report_uri", "report URI"]], "Create client") +
      form("clients-form", "Clients of a customer", [["group_code", "group code", "required"]], "List clients") +
      form("rotate-form", "Rotate a client's webhook signing secret", [["group_code", "group code", "required"], ["client_id", "client id", "required"]], "Rotate") +
      `<div id="clients"></div>` +
      form("bill-form", "Bill code", [["group_code", "group code", "required"], ["bill_code", "bill code", "required"]], "Save bill code") +
      form("caller-form", "Caller ID", [["group_code", "group code", "required"], ["number", "number", "required"]], "Register caller ID") +
      form("optout-form", "Opt-out", [["group_code", "group code", "required"], ["number", "number", "required"]], "Add opt-out") +
      form("balance-form", "Balance", [["group_code", "group code", "required"], ["delta", "top-up (or negative)", "required"]], "Adjust balance") +
      `<div id="secret"></div>`;
    const g = (v) => encodeURIComponent(v.group_code);
    onSubmit("customer-form", "Saving the customer", (v) => api("PUT", `/customers/${g(v)}`, { name: v.name, vas: false, prepaid: false, balance: 0 }));
    onSubmit("service-form", "Saving the service", async (v) => {
      const current = await api("GET", `/customers/${g(v)}`);
      const channels = { ...(current.services?.channels || {}) };
      channels[v.channel] = { enabled: true, tps: Number(v.tps || 0) };
      return api("PUT", `/customers/${g(v)}/services`, { channels });
    });
    onSubmit("client-form", "Creating the client", async (v) => {
      const c = await api("POST", `/customers/${g(v)}/clients`, { report_uri: v.report_uri || null });
      sessionStorage.setItem("mcmp-new-client", `client_id ${c.client_id} · client_secret ${c.client_secret} (shown once)`);
    });
    $("#clients-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = Object.fromEntries(new FormData(ev.target).entries());
      try {
        showError("");
        const { clients } = await api("GET", `/customers/${g(v)}/clients`);
        $("#clients").innerHTML = table(["client id", "report URI", "created"], clients.map((c) => [c.client_id, c.report_uri ?? "", c.created_at ?? ""]));
      } catch (e) { showError(`Clients: ${e.message}`); }
    });
    onSubmit("rotate-form", "Rotating the signing secret", async (v) => {
      const r = await api("POST", `/customers/${g(v)}/clients/${encodeURIComponent(v.client_id)}/signing-secrets`);
      sessionStorage.setItem("mcmp-new-client", `client_id ${v.client_id} · signing_secret ${r.signing_secret} (shown once)`);
    });
    onSubmit("bill-form", "Saving the bill code", (v) => api("PUT", `/customers/${g(v)}/bill-codes/${encodeURIComponent(v.bill_code)}`, { ad: false }));
    onSubmit("caller-form", "Registering the caller ID", (v) => api("PUT", `/customers/${g(v)}/caller-ids/${encodeURIComponent(v.number)}`));
    onSubmit("optout-form", "Adding the opt-out", (v) => api("PUT", `/customers/${g(v)}/opt-outs/${encodeURIComponent(v.number)}`));
    onSubmit("balance-form", "Adjusting the balance", (v) => api("POST", `/customers/${g(v)}/balance`, { delta: Number(v.delta) }));
    const shown = sessionStorage.getItem("mcmp-new-client");
    if (shown) {
      $("#secret").innerHTML = `<p class="note" id="new-client">${esc(shown)}</p>`;
      sessionStorage.removeItem("mcmp-new-client");
    }
  },

  async routing(view) {
    const { routes } = await api("GET", "/routes");
    const rows = routes.map((r) => [r.group_code, r.channel, Object.entries(r.carriers || {})
      .map(([c, gs]) => `${c}: ${gs.map((x) => `${x.sender_group}×${x.ratio}`).join(", ")}`).join(" · ")]);
    view.innerHTML = `<h2>Routing</h2>` + table(["customer", "channel", "carrier: group × ratio"], rows) +
      form("route-form", "Route (one sender group for every carrier)", [["group_code", "customer (or *)", "required"], ["channel", "channel", 'value="SMS"'], ["sender_group", "sender group", "required"], ["ratio", "ratio", 'value="1"']], "Save route") +
      form("ratios-form", "Route with ratios per carrier (carrier: group×ratio, …; carriers separated by ;)", [["group_code", "customer (or *)", "required"], ["channel", "channel", 'value="SMS"'], ["carriers", "e.g. SKT: A×2, B×1; KT: A×1; *: C×1", 'size="50" required']], "Save route") +
      form("where-form", "Where would this number go?", [["number", "number", "required"], ["group_code", "customer", 'value="*"'], ["channel", "channel", 'value="SMS"']], "Look up") +
      `<div id="where"></div>`;
    onSubmit("route-form", "Saving the route", (v) => api("PUT", `/routes/${encodeURIComponent(v.group_code)}/${encodeURIComponent(v.channel)}`, {
      carriers: { "*": [{ sender_group: v.sender_group, ratio: Number(v.ratio || 1) }] },
    }));
    onSubmit("ratios-form", "Saving the route", (v) => {
      const carriers = {};
      for (const part of v.carriers.split(";").map((x) => x.trim()).filter(Boolean)) {
        const [carrier, groups] = part.split(":").map((x) => x.trim());
        carriers[carrier] = groups.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
          const [sender_group, ratio] = x.split(/[×x*]/).map((y) => y.trim());
          return { sender_group, ratio: Number(ratio || 1) };
        });
      }
      return api("PUT", `/routes/${encodeURIComponent(v.group_code)}/${encodeURIComponent(v.channel)}`, { carriers });
    });
    $("#where-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = Object.fromEntries(new FormData(ev.target).entries());
      try {
        const pnx = await api("GET", `/pnx/${encodeURIComponent(v.number)}`);
        const rule = routes.find((r) => r.group_code === v.group_code && r.channel === v.channel) ||
          routes.find((r) => r.group_code === "*" && r.channel === v.channel);
        const groups = rule ? (rule.carriers[pnx.carrier] || rule.carriers["*"] || []) : [];
        $("#where").innerHTML = `<p id="where-answer">${esc(v.number)} → carrier ${esc(pnx.carrier)} (${esc(pnx.source)}) → ` +
          (rule ? `route ${esc(rule.group_code)}/${esc(rule.channel)} → ${esc(groups.map((x) => `${x.sender_group}×${x.ratio}`).join(", ") || "no group for this carrier")}` : "no route") + `</p>`;
      } catch (e) {
        showError(`Look-up refused: ${e.message}`);
      }
    });
  },

  async messages(view) {
    const reportLine = (r) => {
      if (!r) return "";
      const tries = `${r.failed_attempts} failed attempt${r.failed_attempts === 1 ? "" : "s"}`;
      switch (r.state) {
        case "none": return "report: none yet (the message is not final)";
        case "pending": return "report: on its way to the customer's endpoint";
        case "retrying": return `report: retrying after ${tries}, next attempt ${r.next_attempt}`;
        case "delivered": return `report: delivered to the customer's endpoint (after ${tries})`;
        default: return `report: abandoned after ${tries} (available by polling; redrive on the webhooks screen)`;
      }
    };
    view.innerHTML = `<h2>Messages</h2>` +
      form("id-form", "By id", [["id", "message id", "required"]], "Find") +
      form("search-form", "By customer", [["customer", "customer", "required"], ["src_msg_id", "src_msg_id"], ["to", "recipient"], ["status", "status"], ["since", "since (RFC 3339)"], ["until", "until (RFC 3339)"]], "Search") +
      `<div id="found"></div><div id="timeline"></div>`;
    const showTimeline = (m) => {
      const rows = (m.events || []).map((e) => [e.at, e.status, e.code, e.delivered ?? ""]);
      $("#timeline").innerHTML = `<h3 id="timeline-of">Timeline of ${esc(m.message_id)} (${esc(m.group_code ?? "")} · ${esc(m.src_msg_id)} → ${esc(m.to)}, via ${esc(m.sender ?? "–")} / ${esc(m.carrier ?? "–")})</h3>` +
        table(["at", "status", "code", "carrier said delivered"], rows) +
        `<p id="report-state">${esc(reportLine(m.report))}</p>`;
    };
    const list = (messages) => {
      $("#found").innerHTML = table(["id", "src_msg_id", "to", "channel", "status", "code", "created", ""], messages.map((m) =>
        [m.message_id, m.src_msg_id, m.to, m.channel, m.status, m.code, m.created_at, { html: `<button data-id="${esc(m.message_id)}">Timeline</button>` }]));
      $("#found").querySelectorAll("button[data-id]").forEach((b) => b.addEventListener("click", async () => {
        try { showTimeline(await api("GET", `/messages/${encodeURIComponent(b.dataset.id)}`)); } catch (e) { showError(e.message); }
      }));
    };
    $("#id-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        showError("");
        const m = await api("GET", `/messages/${encodeURIComponent(new FormData(ev.target).get("id"))}`);
        list([m]);
        showTimeline(m);
      } catch (e) { showError(`Search: ${e.message}`); }
    });
    $("#search-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams([...new FormData(ev.target).entries()].filter(([, v]) => v));
      try {
        showError("");
        list((await api("GET", `/messages?${q}`)).messages);
      } catch (e) { showError(`Search: ${e.message}`); }
    });
  },

  async webhooks(view) {
    const { webhooks } = await api("GET", "/webhooks");
    const rows = webhooks.map((w) => [w.client_id, w.group_code, w.report_uri, w.failing ? "failing" : "ok", w.queued, w.retrying, w.abandoned, w.next_attempt ?? "",
      { html: `<button data-client="${esc(w.client_id)}">Redrive</button>` }]);
    view.innerHTML = `<h2>Webhooks</h2>` + table(["client", "customer", "report URI", "health", "queued", "retrying", "abandoned", "next attempt", ""], rows);
    view.querySelectorAll("button[data-client]").forEach((b) => b.addEventListener("click", () =>
      change(`Redriving ${b.dataset.client}`, () => api("POST", `/webhooks/${encodeURIComponent(b.dataset.client)}/redrive`))));
  },

  async spam(view) {
    const data = await api("GET", "/spam-keywords");
    const words = data.keywords || data.spam_keywords || [];
    view.innerHTML = `<h2>Spam keywords</h2>` + table(["keyword"], words.map((k) => [typeof k === "string" ? k : k.keyword])) +
      form("spam-form", "Add a keyword", [["keyword", "keyword", "required"]], "Add");
    onSubmit("spam-form", "Adding the keyword", (v) => api("PUT", `/spam-keywords/${encodeURIComponent(v.keyword)}`));
  },

  async agents(view) {
    const { agents } = await api("GET", "/agents");
    const rows = agents.map((a) => [a.agent_id, a.group_code, a.version, a.last_heartbeat, a.sent_per_min, a.reports_per_min, a.lost]);
    view.innerHTML = `<h2>Agents</h2>` + table(["agent", "customer", "version", "last heartbeat", "sent/min", "reports/min", "lost"], rows);
  },

  async audit(view) {
    const { entries } = await api("GET", "/audit?limit=1000");
    const rows = entries.slice().reverse().map((e) => [e.at, e.operator, e.role, `${e.method} ${e.path}`, e.status,
      { html: `<pre>${esc(JSON.stringify(e.before))}</pre>` }, { html: `<pre>${esc(JSON.stringify(e.after))}</pre>` }]);
    view.innerHTML = `<h2>Audit log</h2>` + table(["when", "operator", "role", "change", "status", "before", "after"], rows);
  },

  async operators(view) {
    const { operators } = await api("GET", "/operators");
    view.innerHTML = `<h2>Operators</h2>` + table(["name", "role", "updated"], operators.map((o) => [o.name, o.role, o.updated_at])) +
      `<form id="operator-form"><h3>Operator</h3><label>name <input name="name" required></label>
       <label>password <input name="password" type="password" required></label>
       <label>role <select name="role"><option>viewer</option><option>operator</option><option>admin</option></select></label>
       <button type="submit">Save operator</button></form>`;
    onSubmit("operator-form", "Saving the operator", (v) => api("PUT", `/operators/${encodeURIComponent(v.name)}`, { password: v.password, role: v.role }));
  },
};

// ---- shell ------------------------------------------------------------

async function render() {
  if (events) {
    events.close();
    events = null;
  }
  const name = (location.hash || "#overview").slice(1);
  const screen = screens[name] || screens.overview;
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === `#${name}`));
  const view = $("#view");
  try {
    await screen(view);
  } catch (e) {
    if (e.status === 401) return showLogin();
    view.innerHTML = `<p class="note">Not available: ${esc(e.message)}</p>`;
  }
}

function showLogin() {
  csrf = null;
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#view").innerHTML = "";
  $("#login").hidden = false;
}

async function start() {
  try {
    const me = await api("GET", "/session");
    csrf = me.csrf_token;
    $("#who").textContent = `${me.name} (${me.role})`;
    $("#login").hidden = true;
    $("#nav").hidden = false;
    $("#logout").hidden = false;
    await render();
  } catch (e) {
    showLogin();
  }
}

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const v = Object.fromEntries(new FormData(ev.target).entries());
  try {
    showError("");
    await api("POST", "/session", { name: v.name, password: v.password });
    ev.target.reset();
    await start();
  } catch (e) {
    showError(`Login failed: ${e.message}`);
  }
});
$("#logout").addEventListener("click", async () => {
  await fetch("/admin/v1/session", { method: "DELETE", credentials: "same-origin" });
  showLogin();
});
window.addEventListener("hashchange", () => {
  showError("");
  render();
});
start();
