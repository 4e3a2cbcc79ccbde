// netsvc console: plain JavaScript over the gateway's own endpoints (same origin, so a
// browser that passed the gateway's Basic authentication sends its credentials again).
//
//   GET  events/registry            services and links, live (Server-Sent Events)
//   GET  services/{name}            bindings and descriptor of the service opened
//   POST call/{service}/{method}    a method's form
//   GET  events/reports/{service}   the subscription (Server-Sent Events)
//   GET  nodes                      nodes and links with their counters, every few seconds
//
// Everything shown is built with DOM nodes and textContent: nothing from the mesh is parsed
// as HTML.
"use strict";

(() => {
  const NODES_EVERY_MS = 3000;
  const MAX_REPORTS = 200;

  const $ = (selector, root = document) => root.querySelector(selector);

  // The gateway's endpoints, relative to the page, without the credentials a page opened as
  // http://login:password@host/ has in its URL: fetch refuses URLs with credentials, and the
  // browser sends the ones it authenticated with anyway.
  const base = new URL(".", window.location.href);
  base.username = "";
  base.password = "";
  const url = (path) => new URL(path, base).href;

  /** An element with attributes (`class`, `data-*`, properties otherwise) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("data-") || key === "title" || key === "for") {
        node.setAttribute(key, value);
      } else node[key] = value;
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const state = {
    /** agent → {name, agent, process, node, groups: Set} */
    services: new Map(),
    /** The gateway node's process, from GET /nodes: its services are local. */
    gatewayProcess: null,
    /** The name of the service opened, if any. */
    opened: null,
    filter: "",
    reports: 0,
    subscription: null,
  };

  // ---- helpers ---------------------------------------------------------------------------

  function setPill(element, text, kind) {
    element.textContent = text;
    element.className = "pill" + (kind ? " pill-" + kind : "");
  }

  function clock(date = new Date()) {
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
      pad(date.getMilliseconds(), 3);
  }

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
    return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
  }

  function since(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    const h = Math.floor(s / 3600);
    if (h < 48) return `${h} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  const shortId = (id) => (id && id.length > 12 ? id.slice(0, 8) + "…" : id || "");

  function whereIs(service) {
    if (state.gatewayProcess === null) return "";
    return service.process === state.gatewayProcess ? "local" : "remote";
  }

  /** The JSON of a response, or null when it has none. */
  async function jsonOf(response) {
    const text = await response.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      return { error: { code: 0, name: "NOT_JSON", description: text.slice(0, 500),
                        origin: "console", details: "" } };
    }
  }

  // ---- the registry, live ----------------------------------------------------------------

  const registryState = $("#registry-state");
  let registry = null;

  function connectRegistry() {
    registry = new EventSource(url("events/registry"));
    registry.addEventListener("open", () => {
      // Each (re)connection starts with the current state: forget the old one.
      state.services.clear();
      setPill(registryState, "live", "ok");
      renderServices();
    });
    registry.addEventListener("error", (event) => {
      if (event.data) {
        // The gateway ended the stream (events were dropped): start afresh.
        registry.close();
        setPill(registryState, "resyncing", "wait");
        setTimeout(connectRegistry, 500);
        return;
      }
      const closed = registry.readyState === EventSource.CLOSED;
      setPill(registryState, closed ? "disconnected" : "reconnecting", closed ? "bad" : "wait");
      if (closed) setTimeout(connectRegistry, 2000);
    });
    const on = (name, apply) => registry.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      apply(data);
    });
    on("available", (s) => {
      const old = state.services.get(s.agent);
      state.services.set(s.agent, {
        name: s.name, agent: s.agent, process: s.process, node: s.node,
        groups: old ? old.groups : new Set(), fresh: true,
      });
      changed(s.name);
    });
    on("withdrawn", (s) => {
      state.services.delete(s.agent);
      changed(s.name);
    });
    on("joined", (s) => {
      const known = state.services.get(s.agent);
      if (known) known.groups.add(s.group);
      changed(s.name);
    });
    on("left", (s) => {
      const known = state.services.get(s.agent);
      if (known) known.groups.delete(s.group);
      changed(s.name);
    });
    on("link", () => scheduleNodes(200));
  }

  let renderPending = false;
  function changed(name) {
    // Events come in bursts (the current state first): render once per frame.
    if (!renderPending) {
      renderPending = true;
      requestAnimationFrame(() => {
        renderPending = false;
        renderServices();
      });
    }
    if (name === state.opened) refreshOpened();
  }

  function renderServices() {
    const rows = $("#service-rows");
    const all = [...state.services.values()].sort((a, b) =>
      a.name.localeCompare(b.name) || a.node.localeCompare(b.node) ||
      a.agent.localeCompare(b.agent));
    const filter = state.filter.toLowerCase();
    const shown = all.filter((s) => !filter ||
      s.name.toLowerCase().includes(filter) || s.node.toLowerCase().includes(filter) ||
      [...s.groups].some((g) => g.toLowerCase().includes(filter)));
    rows.replaceChildren(...shown.map((s) => {
      const where = whereIs(s);
      const row = el("tr", {
        class: "service" + (s.name === state.opened ? " selected" : "") + (s.fresh ? " fresh" : ""),
        "data-name": s.name, "data-agent": s.agent, title: `agent ${s.agent}, process ${s.process}`,
      },
        el("td", { class: "name" }, s.name),
        el("td", { class: "groups" }, el("span", { class: "chips" },
          [...s.groups].sort().map((g) => el("span", { class: "chip" }, g)))),
        el("td", { class: "node" }, s.node),
        el("td", { class: "location loc-" + (where || "unknown") }, where));
      row.addEventListener("click", () => openService(s.name));
      s.fresh = false;
      return row;
    }));
    $("#service-count").textContent = String(all.length);
    $("#services-empty").hidden = shown.length > 0;
    $("#services-empty").textContent = all.length ? "No service matches the filter." :
      "No service is visible yet.";
    const names = [...new Set(all.map((s) => s.name))].sort();
    $("#service-names").replaceChildren(...names.map((n) => el("option", { value: n })));
  }

  $("#service-filter").addEventListener("input", (event) => {
    state.filter = event.target.value.trim();
    renderServices();
  });

  // ---- one service: bindings, methods, calls ---------------------------------------------

  const detail = $("#service-detail");
  let openedGeneration = 0;

  async function openService(name) {
    state.opened = name;
    const generation = ++openedGeneration;
    detail.hidden = false;
    $("#service-hint").hidden = true;
    $("#service-title").textContent = name;
    setPill($("#service-status"), "loading", "wait");
    $("#methods").replaceChildren();
    $("#service-bindings tbody").replaceChildren();
    $("#subjects-block").hidden = true;
    renderServices();
    if (!$("#sub-service").value || !state.subscription) $("#sub-service").value = name;
    let response;
    let body;
    try {
      response = await fetch(url("services/" + encodeURIComponent(name)), { cache: "no-store" });
      body = await jsonOf(response);
    } catch (e) {
      body = { error: { description: String(e) } };
    }
    if (generation !== openedGeneration) return;
    if (!response || !response.ok || !body || !body.descriptor) {
      const error = (body && body.error) || {};
      setPill($("#service-status"), "unavailable", "bad");
      $("#methods").replaceChildren(el("p", { class: "empty" },
        error.description || "The gateway does not know this service."));
      return;
    }
    renderOpened(body);
  }

  /** Refreshes the bindings of the opened service (after registry changes). */
  async function refreshOpened() {
    const name = state.opened;
    const alive = [...state.services.values()].some((s) => s.name === name);
    if (!alive) {
      setPill($("#service-status"), "withdrawn", "bad");
      $("#service-bindings tbody").replaceChildren();
      return;
    }
    if (!$("#methods").children.length || $("#service-status").textContent !== "available") {
      openService(name);
      return;
    }
    try {
      const response = await fetch(url("services/" + encodeURIComponent(name)), { cache: "no-store" });
      const body = await jsonOf(response);
      if (name === state.opened && response.ok && body) renderBindings(body.bindings || []);
    } catch {
      // The next change or a reopen tries again.
    }
  }

  function renderBindings(bindings) {
    $("#service-bindings tbody").replaceChildren(...bindings.map((b) => el("tr", {},
      el("td", { class: "mono", title: b.agent }, shortId(b.agent)),
      el("td", {}, b.node),
      el("td", { class: "loc-" + b.location }, b.location),
      el("td", {}, el("span", { class: "chips" },
        (b.groups || []).map((g) => el("span", { class: "chip" }, g)))),
      el("td", { class: "mono" }, b.audience))));
  }

  function renderOpened(body) {
    setPill($("#service-status"), "available", "ok");
    renderBindings(body.bindings || []);
    const descriptor = body.descriptor;
    const methods = descriptor.methods || [];
    const template = $("#method-template");
    $("#methods").replaceChildren(...(methods.length ? methods.map((m) => {
      const form = template.content.firstElementChild.cloneNode(true);
      form.dataset.method = m.name;
      form.id = "method-" + m.name;
      $(".signature", form).textContent = m.signature || m.name;
      const badges = $(".badges", form);
      if (m.fallible) badges.append(el("span", { class: "chip", title: "may fail" }, "fallible"));
      if (m.delayed) badges.append(el("span", { class: "chip", title: "answers later" }, "delayed"));
      $(".doc", form).textContent = m.doc || "";
      $(".params", form).replaceChildren(...(m.params || []).map((p) => el("label", {},
        p.name,
        el("input", { name: p.name, placeholder: placeholder(p.type), "data-type": p.type }),
        el("span", { class: "type" }, p.type))));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        call(body.name, m, form);
      });
      return form;
    }) : [el("p", { class: "empty" }, "This service exports no method.")]));
    const subjects = descriptor.subjects || [];
    $("#subjects-block").hidden = subjects.length === 0;
    $("#subjects").replaceChildren(...subjects.map((s) => {
      const chip = el("button", {
        type: "button", class: "chip",
        title: (s.cached ? "a report is cached; " : "") + "subscribe to it",
      }, s.subject + (s.cached ? " •" : ""));
      chip.addEventListener("click", () => {
        $("#sub-service").value = body.name;
        $("#sub-pattern").value = s.subject;
        subscribe();
      });
      return el("li", {}, chip);
    }));
  }

  function placeholder(type) {
    if (/^(String|&str|&'static str|str)$/.test(type)) return "text";
    if (/^[iu](8|16|32|64|128|size)$/.test(type)) return "0";
    if (/^f(32|64)$/.test(type)) return "0.0";
    if (type === "bool") return "true";
    if (type.startsWith("Option<")) return "empty: null";
    return "JSON";
  }

  /** A field's value: JSON when it parses (a string type takes the text as it is). */
  function argument(input) {
    const text = input.value;
    const type = input.dataset.type || "";
    const trimmed = text.trim();
    if (trimmed === "" && type.startsWith("Option<")) return null;
    if (/^(String|&str|&'static str|str|Option<String>)$/.test(type)) {
      try {
        const v = JSON.parse(trimmed);
        if (typeof v === "string") return v;
      } catch {
        // Plain text.
      }
      return text;
    }
    try {
      return JSON.parse(trimmed);
    } catch {
      return text; // the service will say what is wrong with it
    }
  }

  async function call(service, method, form) {
    const args = [...form.querySelectorAll(".params input")].map(argument);
    const outcome = $(".outcome", form);
    const button = $("button.call", form);
    const elapsed = $(".elapsed", form);
    button.disabled = true;
    elapsed.textContent = "calling…";
    const started = performance.now();
    let status = 0;
    let body;
    try {
      const response = await fetch(
        url(`call/${encodeURIComponent(service)}/${encodeURIComponent(method.name)}`),
        { method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify(args) });
      status = response.status;
      body = await jsonOf(response);
    } catch (e) {
      body = { error: { code: 0, name: "NETWORK", description: String(e), origin: "console" } };
    }
    const ms = Math.round(performance.now() - started);
    button.disabled = false;
    elapsed.textContent = `${ms} ms` + (status ? ` · HTTP ${status}` : "");
    outcome.hidden = false;
    if (body && "result" in body) {
      outcome.className = "outcome ok";
      outcome.replaceChildren(
        el("span", { class: "label" }, "result"),
        el("pre", { class: "result" }, JSON.stringify(body.result, null, 2)));
    } else {
      const e = (body && body.error) || { description: "no answer" };
      outcome.className = "outcome failed";
      const rows = [["code", e.code], ["name", e.name], ["description", e.description],
                    ["origin", e.origin], ["details", e.details]]
        .filter(([, v]) => v !== undefined && v !== null && v !== "");
      outcome.replaceChildren(
        el("span", { class: "label" }, "failure"),
        el("dl", { class: "failure" }, rows.map(([k, v]) =>
          [el("dt", {}, k), el("dd", { class: "failure-" + k }, String(v))])));
    }
  }

  $("#service-close").addEventListener("click", () => {
    state.opened = null;
    openedGeneration++;
    detail.hidden = true;
    $("#service-hint").hidden = false;
    renderServices();
  });

  // ---- a subscription --------------------------------------------------------------------

  const subState = $("#sub-state");

  function subscribe() {
    unsubscribe();
    const service = $("#sub-service").value.trim();
    const pattern = $("#sub-pattern").value.trim() || "*";
    if (!service) return;
    const source = new EventSource(url(`events/reports/${encodeURIComponent(service)}?pattern=` +
      encodeURIComponent(pattern)));
    state.subscription = source;
    setPill(subState, `connecting to ${service} ${pattern}`, "wait");
    $("#sub-stop").disabled = false;
    source.addEventListener("open", () => {
      if (state.subscription === source) setPill(subState, `${service} · ${pattern}`, "ok");
    });
    source.addEventListener("error", () => {
      if (state.subscription !== source) return;
      const closed = source.readyState === EventSource.CLOSED;
      setPill(subState, closed ? "refused" : "reconnecting", closed ? "bad" : "wait");
      if (closed) $("#sub-stop").disabled = true;
    });
    source.addEventListener("report", (event) => {
      let r;
      try {
        r = JSON.parse(event.data);
      } catch {
        return;
      }
      addReport(r);
    });
  }

  function unsubscribe() {
    if (state.subscription) state.subscription.close();
    state.subscription = null;
    setPill(subState, "not subscribed", "");
    $("#sub-stop").disabled = true;
  }

  function addReport(r) {
    const list = $("#reports");
    const content = r.error ? `(${r.error})` : JSON.stringify(r.content);
    const item = el("li", { class: "report fresh", "data-subject": r.subject },
      el("span", { class: "time" }, clock()),
      el("span", {}, el("span", { class: "subject" }, r.subject),
        el("span", { class: "publisher", title: r.agent }, r.publisher)),
      el("pre", { class: "content" }, content));
    list.prepend(item);
    while (list.children.length > MAX_REPORTS) list.lastElementChild.remove();
    state.reports += 1;
    $("#report-count").textContent = String(state.reports);
  }

  $("#subscribe-form").addEventListener("submit", (event) => {
    event.preventDefault();
    subscribe();
  });
  $("#sub-stop").addEventListener("click", unsubscribe);
  $("#sub-clear").addEventListener("click", () => {
    $("#reports").replaceChildren();
    state.reports = 0;
    $("#report-count").textContent = "0";
  });

  // ---- nodes and links -------------------------------------------------------------------

  let nodesTimer = null;

  function scheduleNodes(delay) {
    clearTimeout(nodesTimer);
    nodesTimer = setTimeout(refreshNodes, delay);
  }

  async function refreshNodes() {
    try {
      const response = await fetch(url("nodes"), { cache: "no-store" });
      const body = await jsonOf(response);
      if (response.ok && body && Array.isArray(body.nodes)) {
        const first = state.gatewayProcess === null;
        state.gatewayProcess = body.gateway;
        renderNodes(body);
        if (first) renderServices();
        $("#nodes-updated").textContent = "updated " + clock().slice(0, 8);
      } else {
        $("#nodes-updated").textContent = "cannot read nodes (HTTP " + response.status + ")";
      }
    } catch (e) {
      $("#nodes-updated").textContent = "cannot read nodes: " + e;
    }
    scheduleNodes(NODES_EVERY_MS);
  }

  function renderNodes(body) {
    const gateway = body.nodes.find((n) => n.process === body.gateway);
    if (gateway) $("#gateway-node").textContent = `gateway node ${gateway.node}`;
    $("#node-count").textContent = String(body.nodes.length);
    $("#nodes").replaceChildren(...body.nodes.map((n) => {
      const named = (n.services || []).filter((s) => s.name).map((s) => s.name).sort();
      const links = n.links || [];
      return el("div", { class: "node", "data-node": n.node, "data-process": n.process },
        el("div", { class: "node-head" },
          el("span", { class: "node-name" }, n.node),
          n.process === body.gateway ? el("span", { class: "pill pill-ok" }, "gateway") : null,
          el("span", { class: "muted mono", title: n.process }, shortId(n.process)),
          el("span", { class: "muted" },
            `${named.length} service${named.length === 1 ? "" : "s"} · ` +
            `${(n.subscriptions || []).length} subscription` +
            `${(n.subscriptions || []).length === 1 ? "" : "s"}`)),
        named.length ? el("p", { class: "services-line" }, el("span", { class: "chips" },
          named.map((s) => el("span", { class: "chip" }, s)))) : null,
        links.length ? linksTable(links) :
          el("p", { class: "empty" }, "No link."));
    }));
  }

  function linksTable(links) {
    const head = ["peer", "address", "side", "up", "frames in / out", "bytes in / out",
                  "dropped"].map((h, i) => el("th", { class: i > 3 ? "num" : "" }, h));
    const rows = links.map((l) => el("tr", { class: "link", "data-peer": l.peer_node },
      el("td", {}, l.peer_node, l.peer_hub ? el("span", { class: "muted" }, " hub") : null),
      el("td", { class: "mono" }, l.address),
      el("td", {}, l.side + (l.tls ? " · tls" : "") + (l.authenticated ? " · auth" : "")),
      el("td", {}, since(l.up_ms || 0)),
      el("td", { class: "num frames" }, `${l.frames_in} / ${l.frames_out}`),
      el("td", { class: "num bytes" }, `${bytes(l.bytes_in || 0)} / ${bytes(l.bytes_out || 0)}`),
      el("td", { class: "num" }, String(l.reports_dropped || 0))));
    return el("div", { class: "links-wrap" },
      el("table", { class: "grid compact links" },
        el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows)));
  }

  connectRegistry();
  refreshNodes();
})();
