// The header's status line: `relay-status` (`connected` or `disconnected`), the runtime's state (the
// `runtime-ready` marker once it can run code, `failed` if it never will) and cross-origin isolation;
// below it, while the runtime loads, `load-progress` (a progress bar of the runtime's bytes, then of its
// compile and start) with `load-status` in words, and `load-error` when the page cannot work: why, and
// what to do. `relay-help` says so when the relay cannot be reached for a while.

import { element } from './dom.js';

/** How long the relay may be unreachable before the page says so (a first connect takes a moment). */
const RELAY_HELP_AFTER_MS = 2000;

const MB = 1e6;

export function showStatus(soket) {
  const relay = document.querySelector('[data-testid="relay-status"]');
  const runtime = document.getElementById('runtime-status');
  const header = document.querySelector('header');
  const bar = element('progress', { 'data-testid': 'load-progress', max: '1', 'aria-label': 'loading the Python runtime' });
  const words = element('span', { 'data-testid': 'load-status', 'aria-live': 'polite' });
  const loading = element('p', { class: 'load' }, bar, ' ', words);
  const error = element('p', { class: 'load-error', 'data-testid': 'load-error', role: 'alert', hidden: true });
  const help = element('p', { class: 'load-error', 'data-testid': 'relay-help', role: 'status', hidden: true });
  header.append(loading, error, help);

  const showLoad = () => {
    const { phase, received, total } = soket.load;
    loading.hidden = phase === 'ready' || phase === 'failed';
    if (phase === 'download') {
      if (total) bar.value = 0.9 * Math.min(received / total, 1);
      else bar.removeAttribute('value'); // indeterminate
      const of = total ? ` of ${(total / MB).toFixed(1)}` : '';
      words.textContent = `downloading Python: ${(received / MB).toFixed(1)}${of} MB`;
    } else if (phase === 'compile') {
      bar.value = 0.92;
      words.textContent = 'compiling Python…';
    } else if (phase === 'start') {
      bar.value = 0.95;
      words.textContent = 'starting Python…';
    } else if (phase === 'ready') {
      bar.value = 1;
      words.textContent = 'ready';
    }
    error.hidden = phase !== 'failed';
    if (phase === 'failed') error.textContent = soket.load.error;
  };

  let helpTimer = null;
  const showRelay = () => {
    relay.textContent = soket.relay.status;
    clearTimeout(helpTimer);
    if (soket.relay.status === 'connected') {
      help.hidden = true;
      return;
    }
    helpTimer = setTimeout(() => {
      const why = soket.relay.reason ? ` (${soket.relay.reason})` : '';
      help.textContent = `The page cannot reach the Soket relay at ${window.location.host}${why}. `
        + 'Is it running? The page tries again by itself; programs can run once it is back.';
      help.hidden = false;
    }, RELAY_HELP_AFTER_MS);
  };
  const showRuntime = () => {
    if (soket.runtime.state === 'ready') {
      runtime.replaceChildren(element('span', { 'data-testid': 'runtime-ready' }, 'ready'));
    } else {
      runtime.textContent = soket.runtime.state;
    }
  };
  soket.addEventListener('load', showLoad);
  soket.addEventListener('relay', showRelay);
  soket.addEventListener('runtime', showRuntime);
  showLoad();
  showRelay();
  showRuntime();
  document.getElementById('isolation').textContent = soket.isolated ? 'cross-origin isolated' : 'NOT isolated';
}
