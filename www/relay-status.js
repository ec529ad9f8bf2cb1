// Shows whether the page can hold a session with the relay: opens the WebSocket at /ws with the
// soket.v1 subprotocol and reports `connected` while it is open. Reconnects with a growing delay, since the
// relay closes idle sessions and restarts.

const status = document.getElementById('relay-status');
const isolation = document.getElementById('isolation');
isolation.textContent = self.crossOriginIsolated ? 'cross-origin isolated' : 'NOT isolated';

let delay = 500;

function open() {
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url, 'soket.v1');
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    delay = 500;
    status.textContent = 'connected';
  };
  ws.onclose = () => {
    status.textContent = 'disconnected';
    setTimeout(open, delay);
    delay = Math.min(delay * 2, 10000);
  };
}

open();
