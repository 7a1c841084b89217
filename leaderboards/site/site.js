
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
    const body = table.tBodies[0], rows = [...body.rows];
    const key = r => { const t = r.cells[col].textContent, n = parseFloat(t); return isNaN(n) ? t : n; };
    const dir = th.dataset.dir = th.dataset.dir === "asc" ? "desc" : "asc";
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === "asc" ? 1 : -1));
    rows.forEach(r => body.appendChild(r));
  }));
}

for (const table of document.querySelectorAll("table")) {
  const box = document.createElement("input");
  Object.assign(box, {type: "search", className: "filter", placeholder: "filter rows"});
  box.addEventListener("input", () => {
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const row of table.tBodies[0].rows) {
      const text = row.textContent.toLowerCase();
      row.hidden = !words.every(w => text.includes(w));
    }
  });
  table.before(box);
}

const plots = [...document.querySelectorAll("div.plot")].map(div => {
  const fig = JSON.parse(div.dataset.figure);
  return window.Plotly ? Plotly.newPlot(div, fig.data, fig.layout, fig.config)
                       : Promise.reject(new Error("plotly.min.js did not load"));
});
Promise.allSettled(plots).then(drawn => (function mark() {
  // tells a test (or a reader's devtools) every plot was drawn and every image loaded, and if the
  // page needs a horizontal scroll bar at this window's width
  const imgs = [...document.images];
  if (!imgs.every(i => i.complete)) return setTimeout(mark, 50);
  document.body.dataset.plotsOk = String(drawn.every(d => d.status === "fulfilled"));
  document.body.dataset.imagesOk = String(imgs.every(i => i.naturalWidth > 0));
  const root = document.documentElement;
  document.body.dataset.scrollsX = String(root.scrollWidth > root.clientWidth);
})());
