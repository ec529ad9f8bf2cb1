// The header's status line: `relay-status` (`connected` or `disconnected`), the runtime's state (the
// `runtime-ready` marker once it can run code, `failed` if it never will) and cross-origin isolation.

import { element } from './dom.js';

export function showStatus(soket) {
  const relay = document.querySelector('[data-testid="relay-status"]');
  const runtime = document.getElementById('runtime-status');
  const showRelay = () => { relay.textContent = soket.relay.status; };
  const showRuntime = () => {
    if (soket.runtime.state === 'ready') {
      runtime.replaceChildren(element('span', { 'data-testid': 'runtime-ready' }, 'ready'));
    } else {
      runtime.textContent = soket.runtime.state;
    }
  };
  soket.addEventListener('relay', showRelay);
  soket.addEventListener('runtime', showRuntime);
  showRelay();
  showRuntime();
  document.getElementById('isolation').textContent = soket.isolated ? 'cross-origin isolated' : 'NOT isolated';
}
