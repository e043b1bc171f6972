// The incdsl network page: cytoscape.js draws, dagre lays out and routes the edges around the
// nodes, cytoscape-expand-collapse folds module calls. Everything shown comes from the JSON that incdsl wrote into the page.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("incdsl-data").textContent);
  const byId = new Map();
  D.layers.forEach(l => byId.set(l.id, Object.assign({kind: "layer"}, l)));
  D.blocks.forEach(b => byId.set(b.id, Object.assign({kind: "block"}, b)));
  const num = n => n.toLocaleString("en-US");
  const si = n => {
    for (const [u, s] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) if (n >= s) return (n / s).toPrecision(3) + u;
    return String(n);
  };
  const short = id => id.slice(id.lastIndexOf("/") + 1);
  // a node's label: its path inside the enclosing module call (`b2/conv_1`), unique within the call
  const inside = x => x.parent ? x.id.slice(x.parent.length + 1) : x.id;
  const natural = new Intl.Collator("en", {numeric: true, sensitivity: "base"}).compare;
  const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

  document.getElementById("title").textContent = D.network;
  document.title = D.network + ": incdsl";
  document.getElementById("totals").textContent =
    `${D.layers.length} layers · ${num(D.inference.params)} params · ${si(D.inference.macs)} MACs (inference)` +
    (D.params !== D.inference.params ? ` · ${num(D.params)} params with training-only heads` : "");

  // -- the graph ---------------------------------------------------------------------------------
  const FAMILY = {conv: "#cfe2f3", dwconv: "#cfe2f3", sepconv: "#cfe2f3", maxpool: "#fde3c3", avgpool: "#fde3c3",
    adaptive_avgpool: "#fde3c3", gap: "#fde3c3", gmp: "#fde3c3", dense: "#d5ecd0", concat: "#fff2a8",
    add: "#fff2a8", scale: "#fff2a8", bn: "#e6d8f0", lrn: "#e6d8f0", input: "#d9d9d9"};
  const ctx = document.createElement("canvas").getContext("2d");
  function box(label, size) {  // node size from its label: cytoscape's width: "label" is deprecated
    ctx.font = `${size}px Helvetica, Arial, sans-serif`;
    const lines = label.split("\n");
    return {w: Math.ceil(Math.max(...lines.map(t => ctx.measureText(t).width))) + 12, h: lines.length * (size + 3) + 8};
  }
  const FONT = 10;  // px of a layer's label at zoom 1
  const MIN_ZOOM = 1;  // the first view never shrinks labels below FONT px: scroll and pan for the rest
  const elements = [];
  D.blocks.forEach(b => {
    const label = `${inside(b)}: ${b.module}\n${si(b.params)} params · ${si(b.macs)} MACs\n${b.shape}` +
      (b.train_only ? "\n(training only)" : "");
    const {w, h} = box(label, FONT + 1);
    elements.push({group: "nodes", classes: "block" + (b.train_only ? " train" : ""),
                   data: {id: b.id, parent: b.parent || undefined, label, w, h}});
  });
  D.layers.forEach(l => {
    const label = `${inside(l)}\n${l.desc}\n${l.shape}` + (l.train_only ? "\n(training only)" : "");
    const {w, h} = box(label, FONT);
    elements.push({group: "nodes", classes: "layer" + (l.train_only ? " train" : ""),
                   data: {id: l.id, parent: l.parent || undefined, fill: FAMILY[l.op] || "#ffffff", label, w, h}});
  });
  let e = 0;
  D.layers.forEach(l => l.inputs.forEach(src => elements.push({group: "edges",
    classes: l.train_only ? "train" : "", data: {id: "e" + (e++), source: src, target: l.id, shape: byId.get(src).shape, edgeType: "tensor"}})));

  let rankDir = "TB";  // top to bottom: a network reads down the screen, the page scrolls
  const cy = cytoscape({
    container: document.getElementById("cy"), elements, minZoom: 0.02, maxZoom: 4,
    boxSelectionEnabled: false, textureOnViewport: true, hideEdgesOnViewport: D.layers.length > 250,
    style: [
      {selector: "node.layer", style: {shape: "round-rectangle", "background-color": "data(fill)", label: "data(label)",
        "text-wrap": "wrap", "text-valign": "center", "font-size": FONT, width: "data(w)", height: "data(h)",
        "border-width": 1, "border-color": "#6c7a90"}},
      {selector: "node.block", style: {shape: "round-rectangle", "background-color": "#eef3fa", "background-opacity": 0.7,
        "border-color": "#7f95b5", "border-width": 1.2, label: "data(label)", "text-wrap": "wrap", "font-size": FONT + 1,
        "text-valign": "top", "text-halign": "center", "font-weight": "bold", padding: 8}},
      {selector: "node.block.cy-expand-collapse-collapsed-node", style: {"background-color": "#b7cbe8", "background-opacity": 1,
        "text-valign": "center", width: "data(w)", height: "data(h)", "border-color": "#34558b", "border-width": 1.5}},
      {selector: "node.train", style: {"border-style": "dashed", "border-color": "#8a8a8a", color: "#555"}},
      {selector: "edge", style: {width: 1, "line-color": "#777", "target-arrow-color": "#777", "target-arrow-shape": "triangle",
        "arrow-scale": 0.7, "curve-style": "straight"}},
      {selector: "edge.routed", style: {"curve-style": "segments", "edge-distances": "node-position",
        "segment-weights": e => e.scratch("route").ws, "segment-distances": e => e.scratch("route").ds}},
      {selector: "edge.train", style: {"line-style": "dashed"}},
      {selector: "node:selected, node.found", style: {"border-color": "#d35400", "border-width": 3}},
      {selector: "node.hover", style: {"border-color": "#2e86de", "border-width": 2.5}},
    ],
    layout: {name: "preset"},
  });
  // -- layout: dagre places the nodes and routes each edge between them (cytoscape-dagre, its
  // cytoscape wrapper, keeps only the places, and straight edges then cross the nodes in between)
  let layoutRuns = 0;
  function runLayout() {
    const g = new dagre.graphlib.Graph({compound: true, multigraph: true});
    g.setGraph({rankdir: rankDir, nodesep: 16, ranksep: 34, edgesep: 8});
    g.setDefaultEdgeLabel(() => ({}));
    cy.nodes().forEach(n => {
      if (n.isParent()) { g.setNode(n.id(), {}); return; }
      const d = n.layoutDimensions({nodeDimensionsIncludeLabels: true});
      g.setNode(n.id(), {width: d.w, height: d.h});
    });
    cy.nodes().forEach(n => { if (n.parent().length) g.setParent(n.id(), n.parent().id()); });
    const edges = cy.edges().filter(e => !e.source().isParent() && !e.target().isParent() && e.source() !== e.target());
    edges.forEach(e => g.setEdge(e.source().id(), e.target().id(), {}, e.id()));
    dagre.layout(g);
    cy.batch(() => {
      cy.nodes().forEach(n => { if (!n.isParent()) { const v = g.node(n.id()); n.position({x: v.x, y: v.y}); } });
      edges.forEach(e => route(e, g.edge(e.source().id(), e.target().id(), e.id()).points || []));
    });
  }
  function route(e, points) {  // dagre's bends as cytoscape segments: weights along, distances across
    const s = e.source().position(), t = e.target().position();
    const dx = t.x - s.x, dy = t.y - s.y, len2 = dx * dx + dy * dy;
    const bends = points.slice(1, -1);
    if (!bends.length || len2 < 1e-6) { e.removeClass("routed"); return; }
    const len = Math.sqrt(len2);
    e.scratch("route", {
      bends,
      ws: bends.map(p => ((p.x - s.x) * dx + (p.y - s.y) * dy) / len2),
      ds: bends.map(p => ((p.y - s.y) * dx - (p.x - s.x) * dy) / len),
    });
    e.removeClass("routed").addClass("routed");  // re-reads the route
  }
  function readableView() {  // fit, but never below MIN_ZOOM: then show the start of the network
    cy.fit(undefined, 20);
    if (cy.zoom() >= MIN_ZOOM) return;
    cy.zoom(MIN_ZOOM);
    const bb = cy.elements().boundingBox(), first = cy.nodes().filter(n => !n.isParent())[0].position();
    const x = bb.w * MIN_ZOOM < cy.width() - 40 ? (bb.x1 + bb.x2) / 2 : first.x;
    const y = bb.h * MIN_ZOOM < cy.height() - 40 ? (bb.y1 + bb.y2) / 2 : first.y;
    cy.pan(rankDir === "TB" ? {x: cy.width() / 2 - x * MIN_ZOOM, y: 20 - bb.y1 * MIN_ZOOM}
                            : {x: 20 - bb.x1 * MIN_ZOOM, y: cy.height() / 2 - y * MIN_ZOOM});
  }
  function relayout(fit) {
    runLayout();
    layoutRuns++;
    if (fit) readableView();
  }
  const ec = cy.expandCollapse({layoutBy: () => relayout(false), fisheye: false, animate: false, undoable: false,
                                cueEnabled: true, groupEdgesOfSameTypeOnCollapse: true});

  const isFolded = id => cy.getElementById(id).hasClass("cy-expand-collapse-collapsed-node");
  function fold(ids) {
    const nodes = cy.collection(ids.map(id => cy.getElementById(id)).filter(n => n.length && n.isParent()));
    if (nodes.length) ec.collapse(nodes, {layoutBy: null});
  }
  function unfold(ids) {  // outermost first: a call inside a folded call is not in the graph yet
    ids.forEach(id => { const n = cy.getElementById(id); if (n.length && isFolded(id)) ec.expand(n, {layoutBy: null}); });
  }
  function foldAll() { ec.collapseAll({layoutBy: null}); relayout(true); markTable(); }
  function unfoldAll() { ec.expandAll({layoutBy: null}); relayout(true); markTable(); }
  function ancestors(id) {  // enclosing module calls, outermost first
    const out = [];
    for (let p = byId.get(id).parent; p; p = byId.get(p).parent) out.unshift(p);
    return out;
  }
  function reveal(id) {
    const hidden = ancestors(id).filter(a => !cy.getElementById(a).length || isFolded(a));
    if (hidden.length) { unfold(ancestors(id)); relayout(false); }
    const n = cy.getElementById(id);
    cy.elements().removeClass("found").unselect();
    n.addClass("found").select();
    cy.animate({center: {eles: n}, zoom: Math.max(cy.zoom(), Math.min(1.2, cy.zoom() * 2))}, {duration: 0});
    show(id);
    return n;
  }

  // -- the info panel ----------------------------------------------------------------------------
  const info = document.getElementById("info");
  function row(key, label, value) { return `<dt>${label}</dt><dd data-field="${key}">${value}</dd>`; }
  function placeRow(p) {
    return p ? row("place", "spec", `${esc(p.at)}<br><code>${esc(p.text)}</code>`) : "";
  }
  function show(id) {
    const x = byId.get(id);
    if (!x) return;
    info.dataset.shown = id;
    let html = `<h2 data-field="name">${esc(id)}</h2><dl>`;
    if (x.kind === "layer") {
      html += row("op", "op", esc(x.desc)) + row("call", "arguments", `<code>${esc(x.call)}</code>`) +
        row("shape", "output", esc(x.shape)) +
        row("params", "params", num(x.params) + (x.non_trainable ? ` (${num(x.trainable)} trainable, ${num(x.non_trainable)} non-trainable)` : "")) +
        row("macs", "MACs", num(x.macs)) +
        (x.inputs.length ? row("inputs", "inputs", x.inputs.map(esc).join(", ")) : "") +
        (x.module ? row("module", "module", esc(x.module)) : "") + placeRow(x.place);
    } else {
      html += row("module", "module call", esc(x.module)) + row("shape", "output", esc(x.shape)) +
        row("params", "params", `${num(x.params)} (${num(x.trainable)} trainable)`) + row("macs", "MACs", num(x.macs)) +
        row("layers", "layers", x.layers) + placeRow(x.place);
    }
    if (x.train_only) html += row("train", "training only", "yes: not in the inference model");
    info.innerHTML = html + "</dl>";
  }
  cy.on("mouseover", "node", ev => { ev.target.addClass("hover"); show(ev.target.id()); });
  cy.on("mouseout", "node", ev => ev.target.removeClass("hover"));
  cy.on("tap", "node", ev => show(ev.target.id()));
  cy.on("dbltap", "node.block", ev => {
    const id = ev.target.id();
    if (isFolded(id)) unfold([id]); else fold([id]);
    relayout(false); markTable();
  });

  // -- search ------------------------------------------------------------------------------------
  const names = document.getElementById("names");
  names.innerHTML = D.blocks.concat(D.layers).map(x => `<option value="${esc(x.id)}">`).join("");
  const status = document.getElementById("status");
  function find(q) {  // a name, whatever its case: the whole id, its last part, then a part of it
    q = q.trim();
    if (!q) return null;
    const all = D.blocks.concat(D.layers), k = q.toLowerCase();
    const found = all.find(x => x.id.toLowerCase() === k) || all.find(x => short(x.id).toLowerCase() === k) ||
      all.find(x => x.id.toLowerCase().includes(k));
    const hit = found && byId.get(found.id);  // with its kind: layer or module call
    if (!hit) {  // nothing found: nothing stays highlighted from an earlier search
      cy.elements().removeClass("found").unselect();
      status.textContent = `no layer or module call matches '${q}'`;
      return null;
    }
    reveal(hit.id);
    status.textContent = `found ${hit.id} (` + (hit.kind === "block" ? `module ${hit.module}` :
      `${hit.desc}` + (hit.parent ? ` in ${hit.parent}, module ${byId.get(hit.parent).module}` : "")) + ")";
    return hit.id;
  }
  const search = document.getElementById("search");
  search.addEventListener("keydown", ev => { if (ev.key === "Enter") find(search.value); });
  search.addEventListener("change", () => find(search.value));

  // -- the table of module calls -----------------------------------------------------------------
  const tbody = document.querySelector("#blocks tbody");
  let rows = D.blocks.slice();
  function renderTable() {
    tbody.innerHTML = rows.map(b => `<tr data-id="${esc(b.id)}" class="${b.train_only ? "train" : ""}">` +
      `<td>${esc(b.id)}</td><td>${esc(b.module)}</td><td>${esc(b.shape)}</td>` +
      `<td class="num">${num(b.params)}</td><td class="num">${num(b.macs)}</td></tr>`).join("");
  }
  function markTable() {
    tbody.querySelectorAll("tr").forEach(tr => tr.classList.toggle("current", info.dataset.shown === tr.dataset.id));
  }
  document.querySelectorAll("#blocks th").forEach(th => th.addEventListener("click", () => {
    const key = th.dataset.key, asc = !th.classList.contains("sorted-asc");
    document.querySelectorAll("#blocks th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
    th.classList.add(asc ? "sorted-asc" : "sorted-desc");
    // numbers as numbers; names and shapes naturally (mixed2 before mixed10, 8x8x2048 before 17x17x768)
    const cmp = (a, b) => typeof a === "number" ? a - b : natural(String(a), String(b));
    rows.sort((a, b) => cmp(a[key], b[key]) * (asc ? 1 : -1));
    renderTable();
  }));
  tbody.addEventListener("click", ev => {
    const tr = ev.target.closest("tr");
    if (tr) { reveal(tr.dataset.id); markTable(); }
  });
  renderTable();
  if (!D.blocks.length) {
    document.getElementById("blocks").hidden = true;
    document.getElementById("no-blocks").hidden = false;
  }

  document.getElementById("fold-all").addEventListener("click", foldAll);
  document.getElementById("unfold-all").addEventListener("click", unfoldAll);
  document.getElementById("fit").addEventListener("click", () => cy.fit(undefined, 20));
  document.getElementById("readable").addEventListener("click", readableView);
  document.getElementById("direction").addEventListener("click", () => {
    rankDir = rankDir === "TB" ? "LR" : "TB"; relayout(true);
  });

  // Open folded (module calls of D.fold_depth or more name parts; "all": none): large networks stay
  // responsive, and the first view is the network's outline at a readable size.
  if (D.fold_depth !== "all") {
    const depth = id => id.split("/").length;
    const deep = D.blocks.filter(b => depth(b.id) >= D.fold_depth).sort((a, b) => depth(b.id) - depth(a.id));
    deep.forEach(b => fold([b.id]));
  }
  relayout(true);

  // For scripts and tests: the same operations the buttons do, and what is on screen.
  window.incdsl = {
    cy, data: D, find, show, reveal, foldAll, unfoldAll,
    fold: id => { fold([id]); relayout(false); },
    unfold: id => { unfold(ancestors(id).concat([id])); relayout(false); },
    layerNodes: () => cy.nodes(".layer").length,
    readableView, minZoom: MIN_ZOOM,
    layoutRuns: () => layoutRuns,
    ready: true,
  };
})();
