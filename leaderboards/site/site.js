
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
    const body = table.tBodies[0], rows = [...body.rows];
    const key = r => { const t = r.cells[col].textContent, n = parseFloat(t); return isNaN(n) ? t : n; };
    const dir = th.dataset.dir = th.dataset.dir === "asc" ? "desc" : "asc";
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === "asc" ? 1 : -1));
    rows.forEach(r => body.appendChild(r));
  }));
}
(function mark() {  // tells a test (or a reader's devtools) every plot loaded, and if the page
  const imgs = [...document.images];  // needs a horizontal scroll bar at this window's width
  if (!imgs.every(i => i.complete)) return setTimeout(mark, 50);
  document.body.dataset.imagesOk = String(imgs.every(i => i.naturalWidth > 0));
  const root = document.documentElement;
  document.body.dataset.scrollsX = String(root.scrollWidth > root.clientWidth);
})();
