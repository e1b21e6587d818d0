// APIGate pages: the few things that need a script. Everything else works without it.
(() => {
  'use strict';

  // Copy buttons: <button data-copy="#id">.
  for (const btn of document.querySelectorAll('[data-copy]')) {
    btn.hidden = false;
    btn.addEventListener('click', async () => {
      const el = document.querySelector(btn.getAttribute('data-copy'));
      if (!el) return;
      const text = el.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const range = document.createRange();
        range.selectNodeContents(el);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        document.execCommand('copy');
      }
      const status = document.getElementById(`${btn.id}-status`);
      if (status) status.textContent = 'Copied to the clipboard';
    });
  }

  // Confirm before destructive posts: <form data-confirm="...">.
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (e) => {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  }

  // Charts: <figure class="chart" data-chart="<id of a JSON script>">; the table beside stays for no-JS and screen readers.
  const charts = [];
  const palette = ['#1f5fd1', '#d92d20', '#079455', '#dc6803'];
  function draw(fig) {
    const src = document.getElementById(fig.getAttribute('data-chart'));
    const plot = fig.querySelector('.plot');
    if (!src || !plot || typeof uPlot === 'undefined') return;
    const spec = JSON.parse(src.textContent);
    const width = Math.max(260, plot.clientWidth || fig.clientWidth);
    const bars = spec.kind === 'bars' ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;
    const opts = {
      width,
      height: spec.height || 220,
      // A window given by the page (e.g. the last 24 hours) keeps one lone point from stretching the axis over years.
      scales: { x: { time: true, range: (_u, min, max) => spec.range || [min, max] } },
      // Day charts: one tick per day (or week), labelled MM-DD in UTC.
      axes: [
        spec.unit === 'day' ? { incrs: [86400, 7 * 86400], values: (_u, vals) => vals.map((v) => new Date(v * 1000).toISOString().slice(5, 10)) } : {},
        { size: 56 },
      ],
      series: [
        {},
        ...spec.series.map((s, i) => ({
          label: s.label,
          stroke: palette[i % palette.length],
          fill: spec.kind === 'bars' ? `${palette[i % palette.length]}99` : undefined,
          width: 2,
          paths: bars,
          points: { show: spec.x.length < 40 },
        })),
      ],
    };
    const data = [spec.x, ...spec.series.map((s) => s.values)];
    plot.textContent = '';
    charts.push({ fig, plot, chart: new uPlot(opts, data, plot) });
    fig.setAttribute('data-drawn', 'true');
  }
  for (const fig of document.querySelectorAll('figure.chart[data-chart]')) draw(fig);
  let t;
  window.addEventListener('resize', () => {
    clearTimeout(t);
    t = setTimeout(() => {
      for (const c of charts) c.chart.setSize({ width: Math.max(260, c.plot.clientWidth), height: c.chart.height });
    }, 150);
  });

  // "Try it" on the admin routes page: calls the route from this browser with the key given.
  const tryForm = document.getElementById('try-it');
  if (tryForm) {
    tryForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = document.getElementById('try-it-out');
      const fd = new FormData(tryForm);
      const headers = {};
      if (fd.get('key')) headers['X-API-Key'] = String(fd.get('key'));
      out.textContent = 'calling…';
      const started = performance.now();
      try {
        const res = await fetch(String(fd.get('path')), { method: String(fd.get('method')), headers, credentials: 'omit' });
        const text = await res.text();
        const ms = Math.round(performance.now() - started);
        const shown = ['content-type', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'retry-after'].filter((h) => res.headers.get(h)).map((h) => `${h}: ${res.headers.get(h)}`);
        out.textContent = `HTTP ${res.status} in ${ms} ms\n${shown.join('\n')}\n\n${text.slice(0, 4000)}`;
      } catch (err) {
        out.textContent = `request failed: ${err}`;
      }
      out.focus();
    });
  }
})();
