// Shows the server's /healthz answer on the status page.
const el = document.getElementById('health');
try {
  const r = await fetch('/healthz', { cache: 'no-store' });
  const body = await r.json();
  el.textContent = r.ok ? `Health: ${body.status}, version ${body.version}.` : `Health check failed (${r.status}).`;
} catch (e) {
  el.textContent = 'Health check failed.';
}
